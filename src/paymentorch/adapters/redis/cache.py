"""A cache shared by every process through Redis, with a local tier kept coherent by
Redis pub/sub invalidations."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

from paymentorch.adapters import _wire
from paymentorch.adapters._require import driver
from paymentorch.adapters.redis import tiers
from paymentorch.domain import Payment

logger = logging.getLogger("paymentorch.cache")


class _Tiers:
    """The state and decisions both forms share; they add only the I/O."""

    _DRIVER: str  # the redis-py module each form talks through
    _LOCK: Any  # the lock that form's tasks or threads take turns with
    _tick = 0.25  # how often the listener looks for a new generation owed

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        ttl: timedelta = timedelta(minutes=5),
        local: bool = True,
        namespace: str = "paymentorch",
        local_size: int = 10_000,
        timeout: float = 0.5,
        retry_after: float = 1.0,
    ) -> None:
        redis = driver(self._DRIVER, "redis")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be longer than 0")
        self._redis = redis
        self.url = url
        self.local = local
        self.namespace = namespace
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._timeout = timeout
        self._retry_after = retry_after
        self._tier = tiers.LocalTier(local_size, ttl.total_seconds())
        self._client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._get = self._client.register_script(tiers.GET)
        self._set = self._client.register_script(tiers.SET)
        self._delete = self._client.register_script(tiers.DELETE)
        self._new_generation = self._client.register_script(tiers.NEW_GENERATION)
        self._generation_lock = self._LOCK()
        self._keys = [f"{namespace}:gen"]
        self._prefix = f"{namespace}:p:"
        self._channel = f"{namespace}:invalidate"
        self._generation: bytes | None = None
        self._down_until = 0.0  # reads skip Redis until then, after a failure
        self._writes_down_until = 0.0  # writes too, after one waited out the timeout
        self._failures = 0  # Redis calls of this process that failed or were skipped
        self._owed = False  # a new generation, for those failures, once Redis answers
        self._listening = False
        self._listener: Any = None  # the asyncio task or the thread that listens
        self._closed = threading.Event()
        self._start_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tier)

    def _local_hit(self, payment_id: UUID) -> Payment | None:
        if self.local and self._listening:
            return self._tier.get(payment_id)
        return None

    def _found(self, payment_id: UUID, answer: Any, epoch: int) -> Payment | None:
        """What Redis answered to ``GET``, unless older than what this process has read."""
        if answer is None:
            return None
        generation, entry = answer
        if generation != self._generation:  # a new generation: local entries may be stale
            if self._generation is not None:
                self._tier.clear()
            self._generation = generation
        if entry is None:
            return None
        payment = _wire.decode(entry)
        if payment.version < self._tier.floor(payment_id):
            return None  # older than what this process has read: ask the store
        self._tier.offer(payment, epoch)
        return payment

    def _set_args(self, payment: Payment) -> list[Any]:
        self._tier.offer(payment, self._tier.epoch)
        return [
            self._channel,
            self._prefix,
            str(payment.id),
            payment.version,
            _wire.encode(payment),
            self._ttl_ms,
        ]

    def _skip(self, *, read: bool) -> bool:
        """True while Redis is taken for down: for reads after any failure, for writes
        after one that waited out the timeout (a hung Redis). A skipped write counts as a
        failure: what it would have replaced may be stale."""
        now = time.monotonic()
        if now < (self._down_until if read else self._writes_down_until):
            if not read:
                self._missed()
            return True
        return False

    def _failed(self, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            logger.warning("Redis cache unavailable (%s); reading the store", exc)
        self._down_until = time.monotonic() + self._retry_after
        if isinstance(exc, TimeoutError | self._redis.TimeoutError):
            self._writes_down_until = self._down_until  # hung: writes would each wait too
        self._missed()

    def _missed(self) -> None:
        """Redis missed a read or a write of this process: start a new generation of
        entries once it answers (one per failure, however many tasks saw it)."""
        self._failures += 1
        self._owed = True

    def _hung(self) -> bool:
        """True while writes skip Redis, after one waited out the whole timeout."""
        return time.monotonic() < self._writes_down_until

    def _gave_up(self, *, read: bool) -> None:
        """A call not made: Redis failed while it waited for the new generation."""
        if not read:
            self._missed()

    def _paid(self, failures: int) -> None:
        """A new generation was started, covering the first ``failures`` failures."""
        if self._failures == failures:
            self._owed = False
        logger.warning("Redis cache is back: started a new generation of entries")

    def _lost(self, exc: Exception | None) -> None:
        if exc is not None and self._listening:
            logger.warning("Redis invalidations lost (%s); local tier off", exc)
        self._listening = False
        self._tier.clear()

    def _heard(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":
            self._tier.clear()  # whatever was missed before now is gone with it
            self._listening = True
        elif message["type"] == "message":
            try:
                self._tier.apply(message["data"])
            except ValueError:  # not one of ours: forget everything rather than guess
                logger.warning("Redis cache: unreadable invalidation %r", message["data"])
                self._tier.clear()


class RedisCache(_Tiers):
    """Payments in Redis (the shared tier), and in this process (the local tier).

    Entries carry the payment's version; a set never replaces a newer one. The writer
    updates Redis before its change returns and publishes an invalidation that every
    process's local tier applies (within milliseconds on loopback; until it arrives a
    process may return the version before, never an older one). ``local=False`` reads
    Redis every time: strict read-after-write across processes.

    Redis down is never an error: reads miss (the service reads the store) and skip
    Redis for ``retry_after`` after a failure; writes still try, each bounded by
    ``timeout``, except for ``retry_after`` after one that waited the whole timeout (a
    hung Redis): a breaker, as for reads. It is logged once per outage. While the
    invalidation channel is down the local tier serves nothing; it starts empty when it
    is back.

    Redis is not trusted for what it held before it restarted (with its data or
    without) or before it missed a call of this process: the first script on a
    restarted server starts a new generation of entries, and a process that could not
    read or write (or skipped a write) starts one as soon as Redis answers, once
    however many of its tasks saw the failure; every process follows the generation in
    use. A writer that dies while Redis hangs leaves what it could not overwrite until
    its ``ttl``. One Redis server, not a cluster (the scripts build keys). Close it
    with ``aclose``.

    Raises:
        MissingDriver: redis-py is not installed (``paymentorch[redis]``).
    """

    _DRIVER = "redis.asyncio"
    _LOCK = asyncio.Lock

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment from the local tier, else from Redis; None on a miss or trouble."""
        self._listen()
        if (found := self._local_hit(payment_id)) is not None:
            return found
        epoch = self._tier.epoch
        args = [self._channel, self._prefix, str(payment_id)]
        return self._found(payment_id, await self._call(self._get, args, read=True), epoch)

    async def set(self, payment: Payment) -> None:
        """Keep ``payment`` in Redis unless a newer version is there, and tell the others."""
        self._listen()
        await self._call(self._set, self._set_args(payment))

    async def delete(self, payment_id: UUID) -> None:
        """Forget the payment here, in Redis, and in every other process's local tier."""
        self._tier.invalidate(payment_id, None)
        await self._call(self._delete, [self._channel, self._prefix, str(payment_id)])

    async def aclose(self) -> None:
        """Stop listening and close the connections."""
        self._closed.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            # The driver may turn a cancelled read into a connection error, which the
            # listener survives: ``_closed`` ends its loop, and nobody waits forever.
            done, _ = await asyncio.wait({listener}, timeout=5)
            for task in done:
                if not task.cancelled():
                    task.exception()  # logged where it happened
        await self._client.aclose()

    async def _call(self, script: Any, args: list[Any], *, read: bool = False) -> Any:
        """The script's answer, or None when Redis is down. Reads skip Redis for a while
        after a failure; writes too after a timeout, else they always try, since one
        skipped while Redis is back would let other processes read what it did not
        overwrite (until the new generation this process owes then)."""
        if self._skip(read=read):
            return None
        try:
            if self._owed and not await self._start_generation():
                return self._gave_up(read=read)
            return await script(keys=self._keys, args=args)
        except (self._redis.RedisError, OSError) as exc:
            self._failed(exc)
            return None

    async def _start_generation(self, *, patient: bool = False) -> bool:
        """The new generation this process owes, started once, by the first task to
        find Redis answering; the others wait for it rather than read the old one.
        False when Redis hung for the task before this one (unless ``patient``)."""
        async with self._generation_lock:
            if self._owed:
                if self._hung() and not patient:
                    return False
                failures = self._failures
                await self._new_generation(keys=self._keys, args=[self._channel])
                self._paid(failures)
        return True

    def _listen(self) -> None:
        if self._listener is None and not self._closed.is_set():
            self._listener = asyncio.get_running_loop().create_task(self._listen_forever())

    async def _heal(self) -> None:
        """The listener's try at the generation owed: whatever the breaker says, since
        no caller waits on it, so it starts the moment Redis answers."""
        try:
            await self._start_generation(patient=True)
        except (self._redis.RedisError, OSError) as exc:
            self._failed(exc)

    async def _listen_forever(self) -> None:
        client = self._redis.Redis.from_url(
            self.url, socket_connect_timeout=self._timeout, health_check_interval=1
        )
        try:
            while not self._closed.is_set():
                error = None
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(self._channel)
                        while not self._closed.is_set():
                            if message := await pubsub.get_message(timeout=self._tick):
                                self._heard(message)
                            elif self._owed:  # start the generation owed, without a caller
                                await self._heal()
                except (self._redis.RedisError, OSError) as exc:
                    error = exc
                finally:
                    self._lost(error)
                await asyncio.sleep(self._retry_after)
        finally:
            await client.aclose()


class SyncRedisCache(_Tiers):
    """``RedisCache`` for the blocking service (``SyncPaymentService``): the same entries,
    scripts and channel, so async and blocking processes share one cache; the
    invalidations arrive on a daemon thread. Close it with ``close``.

    Raises:
        MissingDriver: redis-py is not installed (``paymentorch[redis]``).
    """

    _DRIVER = "redis"
    _LOCK = threading.Lock

    def get(self, payment_id: UUID) -> Payment | None:
        """The payment from the local tier, else from Redis; None on a miss or trouble."""
        self._listen()
        if (found := self._local_hit(payment_id)) is not None:
            return found
        epoch = self._tier.epoch
        args = [self._channel, self._prefix, str(payment_id)]
        return self._found(payment_id, self._call(self._get, args, read=True), epoch)

    def set(self, payment: Payment) -> None:
        """Keep ``payment`` in Redis unless a newer version is there, and tell the others."""
        self._listen()
        self._call(self._set, self._set_args(payment))

    def delete(self, payment_id: UUID) -> None:
        """Forget the payment here, in Redis, and in every other process's local tier."""
        self._tier.invalidate(payment_id, None)
        self._call(self._delete, [self._channel, self._prefix, str(payment_id)])

    def close(self) -> None:
        """Stop listening and close the connections."""
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._client.close()

    def _call(self, script: Any, args: list[Any], *, read: bool = False) -> Any:
        if self._skip(read=read):
            return None
        try:
            if self._owed and not self._start_generation():
                return self._gave_up(read=read)
            return script(keys=self._keys, args=args)
        except (self._redis.RedisError, OSError) as exc:
            self._failed(exc)
            return None

    def _start_generation(self, *, patient: bool = False) -> bool:
        with self._generation_lock:
            if self._owed:
                if self._hung() and not patient:
                    return False
                failures = self._failures
                self._new_generation(keys=self._keys, args=[self._channel])
                self._paid(failures)
        return True

    def _heal(self) -> None:
        try:
            self._start_generation(patient=True)
        except (self._redis.RedisError, OSError) as exc:
            self._failed(exc)

    def _listen(self) -> None:
        if self._listener is None and not self._closed.is_set():
            with self._start_lock:
                if self._listener is None:
                    self._listener = threading.Thread(
                        target=self._listen_forever, name="paymentorch-redis-cache", daemon=True
                    )
                    self._listener.start()

    def _listen_forever(self) -> None:
        client = self._redis.Redis.from_url(
            self.url, socket_connect_timeout=self._timeout, health_check_interval=1
        )
        try:
            while not self._closed.is_set():
                error = None
                try:
                    with client.pubsub() as pubsub:
                        pubsub.subscribe(self._channel)
                        while not self._closed.is_set():
                            if message := pubsub.get_message(timeout=self._tick):
                                self._heard(message)
                            elif self._owed:  # start the generation owed, without a caller
                                self._heal()
                except (self._redis.RedisError, OSError) as exc:
                    error = exc
                finally:
                    self._lost(error)
                self._closed.wait(self._retry_after)
        finally:
            client.close()
