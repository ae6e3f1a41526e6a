"""Relayed events to a NATS JetStream stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from paymentorch.adapters._require import driver
from paymentorch.domain import PaymentEvent
from paymentorch.sinks._encoding import encode_event, group_by_payment

logger = logging.getLogger("paymentorch.sinks")


class NatsSink:
    """Publishes each event to ``<subject_prefix>.<event type>`` on a JetStream stream.

    The stream is created when missing (subjects ``<subject_prefix>.>``). Every message
    carries ``Nats-Msg-Id`` = the event id, so a batch delivered again after a crash or a
    failed acknowledgement is stored once. A call returns when the stream acknowledged
    every event; any failure raises, and the relay keeps the batch. The connection is
    made on first use and re-made by the client after a cut.
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "PAYMENTS",
        subject_prefix: str = "payments",
        timeout: float = 5.0,
        duplicate_window: float = 120.0,
    ) -> None:
        self._nats = driver("nats", "nats")
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.timeout = timeout
        self.duplicate_window = duplicate_window
        self._client: Any = None
        self._jetstream: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, events: Sequence[PaymentEvent]) -> None:
        jetstream = await self._ready()

        async def publish(group: list[PaymentEvent]) -> None:
            for event in group:
                await jetstream.publish(
                    f"{self.subject_prefix}.{event.type}",
                    encode_event(event),
                    timeout=self.timeout,
                    stream=self.stream,
                    headers={"Nats-Msg-Id": str(event.id)},
                )

        await asyncio.gather(*(publish(g) for g in group_by_payment(events)))

    async def _ready(self) -> Any:
        async with self._lock:
            if self._jetstream is None:
                client = self._nats.NATS()
                await client.connect(
                    self.url,
                    connect_timeout=self.timeout,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._log_error,
                    disconnected_cb=partial(self._log_disconnect, client),
                )
                try:
                    jetstream = client.jetstream(timeout=self.timeout)
                    await self._ensure_stream(jetstream)
                except BaseException:
                    await client.close()
                    raise
                self._client, self._jetstream = client, jetstream
            return self._jetstream

    async def _ensure_stream(self, jetstream: Any) -> None:
        errors = driver("nats.js.errors", "nats")
        try:
            await jetstream.stream_info(self.stream)
        except errors.NotFoundError:
            try:
                await jetstream.add_stream(
                    name=self.stream,
                    subjects=[f"{self.subject_prefix}.>"],
                    duplicate_window=self.duplicate_window,
                )
            except errors.BadRequestError:  # another relay created it meanwhile
                await jetstream.stream_info(self.stream)

    async def aclose(self) -> None:
        """Close the connection (a later call opens a new one)."""
        async with self._lock:
            client, self._client, self._jetstream = self._client, None, None
        if client is not None:
            await client.close()

    async def _log_error(self, error: Exception) -> None:
        logger.warning("NATS: %s: %s", type(error).__name__, error)

    @staticmethod
    async def _log_disconnect(client: Any) -> None:
        # Only a closed client's disconnect is expected (a close asked for); one lost
        # while the first call still sets up the stream is as real as any later.
        if not client.is_closed:
            logger.warning("NATS: disconnected; reconnecting")
