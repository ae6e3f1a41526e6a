"""The ``paymentorch`` console command: ``migrate``, ``worker``, ``relay`` and ``rotate-key``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from datetime import timedelta
from typing import Any

from paymentorch._migrate import migrate_sync
from paymentorch.adapters._require import MissingDriver
from paymentorch.domain import PaymentError
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.orchestration import LOOKUP_SCHEDULE


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="paymentorch", description="paymentorch tools")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="create or upgrade the schema at URL")
    migrate.add_argument("url", help="postgresql://user@host:5432/db or sqlite:///path.db")
    migrate.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    worker = commands.add_parser(
        "worker",
        help="carry out queued operations at URL",
        description="PAYMENTORCH_CACHE (redis://...) and PAYMENTORCH_ENCRYPTION_KEY, when set,"
        " give the worker the services' Redis cache and keys.",
    )
    worker.add_argument("url", help="the database the services write to")
    worker.add_argument(
        "--processor",
        required=True,
        help="module:name of a PaymentProcessor, or of a function that returns one",
    )
    worker.add_argument("--batch-size", type=int, default=10, help="operations per claim")
    worker.add_argument("--once", action="store_true", help="work until nothing is due, then stop")
    worker.add_argument(
        "--lease", type=float, default=60.0, help="seconds a claimed operation is held"
    )
    worker.add_argument(
        "--lookup-schedule",
        type=_seconds_list,
        default=LOOKUP_SCHEDULE,
        help="comma-separated seconds between lookups of an unknown outcome"
        " (default: 5,30,120,600,3600,21600,86400)",
    )
    worker.add_argument(
        "--poll", type=float, default=0.5, help="seconds to wait when nothing is due"
    )
    worker.add_argument(
        "--credit-limit",
        metavar="'AMOUNT CURRENCY'",
        type=_credit,
        help="the credit policy the services use, such as '500.00 USD': the worker's"
        " settlements must release what they reserved",
    )
    relay = commands.add_parser(
        "relay",
        help="deliver committed events from URL to a sink",
        description="PAYMENTORCH_ENCRYPTION_KEY, when set, opens events sealed at rest.",
    )
    relay.add_argument("url", help="the database the services write to")
    relay.add_argument(
        "--sink",
        required=True,
        help="nats://host:4222, amqp://user:pass@host:5672/, or module:name of an"
        " EventSink (a class named there is instantiated without arguments)",
    )
    relay.add_argument("--batch-size", type=int, default=100, help="events per delivery")
    relay.add_argument("--lease", type=float, default=30.0, help="seconds a claimed batch is held")
    relay.add_argument(
        "--poll", type=float, default=1.0, help="seconds to wait when nothing is pending"
    )
    relay.add_argument("--once", action="store_true", help="deliver what is due, then stop")
    rotate = commands.add_parser(
        "rotate-key",
        help="seal stored customer ids and metadata with the active key (also a first time)",
        description="Keys come from PAYMENTORCH_ENCRYPTION_KEY:"
        " index=<base64>,<active key id>=<base64>[,<older key id>=<base64>...]",
    )
    rotate.add_argument("url", help="the database the services write to")
    rotate.add_argument("--batch-size", type=int, default=200, help="rows per read")
    args = parser.parse_args(argv)
    try:
        if args.command == "rotate-key":
            return _rotate_key(args.url, args.batch_size)
        if args.command == "relay":
            options = {
                "batch_size": args.batch_size,
                "lease": timedelta(seconds=args.lease),
                "poll_interval": args.poll,
            }
            return asyncio.run(_relay(args.url, args.sink, options, once=args.once))
        if args.command == "worker":
            options = {
                "batch_size": args.batch_size,
                "lease": timedelta(seconds=args.lease),
                "lookup_schedule": args.lookup_schedule,
                "poll_interval": args.poll,
            }
            return asyncio.run(
                _work(args.url, args.processor, options, once=args.once, credit=args.credit_limit)
            )
        output = migrate_sync(args.url, revision=args.revision, sql=args.sql)
    except (PaymentError, MissingDriver, LookupError, ValueError) as exc:
        print(f"paymentorch: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a driver's error: show it plainly, without a traceback
        print(f"paymentorch: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if output is not None:
        sys.stdout.write(output)
    else:
        print(f"paymentorch: schema at {args.revision}", file=sys.stderr)
    return 0


def load_processor(spec: str) -> Any:
    """The processor ``module:name`` names; a callable without ``execute`` is called."""
    found = _named(spec, "--processor")
    return found if hasattr(found, "execute") else found()


def _named(spec: str, option: str) -> Any:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"{option} must look like module:name, not {spec!r}")
    found = getattr(importlib.import_module(module_name), name, None)
    if found is None:
        raise LookupError(f"{module_name} has no {name!r}")
    return found


def _seconds_list(text: str) -> tuple[timedelta, ...]:
    try:
        delays = tuple(timedelta(seconds=float(part)) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not seconds separated by commas: {text!r}") from None
    if any(d <= timedelta(0) for d in delays):
        raise argparse.ArgumentTypeError("every delay must be more than 0 seconds")
    return delays


def _credit(text: str) -> CreditPolicy:
    try:
        return CreditPolicy.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _work(
    url: str, spec: str, options: dict[str, Any], *, once: bool, credit: CreditPolicy | None
) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command
    from paymentorch.worker import PaymentWorker  # noqa: PLC0415

    processor = load_processor(spec)
    adapters = _adapters_from_env()
    try:
        async with await open_service(
            url, processor=processor, create_schema=False, credit=credit, **adapters
        ) as svc:
            return await _work_with(svc, PaymentWorker(svc, **options), once=once)
    finally:
        cache = adapters.get("cache")
        if cache is not None:
            await cache.aclose()


async def _work_with(svc: Any, worker: Any, *, once: bool) -> int:
    if once:
        while await worker.run_once():
            continue
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"paymentorch: worker running on {svc.store.backend}", file=sys.stderr)
    await worker.run(stop)
    return 0


def _rotate_key(url: str, batch_size: int) -> int:
    from paymentorch._rotate import rotate_key  # noqa: PLC0415 - only for this command
    from paymentorch.crypto import FieldEncryption  # noqa: PLC0415

    setting = os.environ.get("PAYMENTORCH_ENCRYPTION_KEY")
    if not setting:
        raise ValueError("set PAYMENTORCH_ENCRYPTION_KEY to the keys (see --help)")
    encryption = FieldEncryption.parse(setting)
    done = rotate_key(url, encryption, batch_size=batch_size)
    print(
        f"paymentorch: sealed with {encryption.active}: {done.payments} payments,"
        f" {done.events} events, {done.exposures} exposure rows folded",
        file=sys.stderr,
    )
    return 0


def _adapters_from_env() -> dict[str, Any]:
    """The services' cache and encryption, as the hosts configure them: a worker must
    keep the shared cache current, and worker and relay must open sealed values."""
    adapters: dict[str, Any] = {}
    if key := os.environ.get("PAYMENTORCH_ENCRYPTION_KEY"):
        from paymentorch.crypto import FieldEncryption  # noqa: PLC0415

        adapters["encryption"] = FieldEncryption.parse(key)
    if cache := os.environ.get("PAYMENTORCH_CACHE"):
        from paymentorch.adapters.redis_cache import RedisCache  # noqa: PLC0415

        adapters["cache"] = RedisCache(cache)
    return adapters


def load_sink(spec: str) -> Any:
    """The sink ``--sink`` names: a broker URL, or ``module:name`` of an ``EventSink`` (a
    class named there is instantiated without arguments)."""
    if "://" in spec:
        from paymentorch.sinks import sink_from_url  # noqa: PLC0415 - optional drivers

        return sink_from_url(spec)
    found = _named(spec, "--sink")
    return found() if isinstance(found, type) else found


async def _relay(url: str, spec: str, options: dict[str, Any], *, once: bool) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command
    from paymentorch.outbox import OutboxRelay  # noqa: PLC0415

    sink = load_sink(spec)
    try:
        encryption = _adapters_from_env().get("encryption")
        async with await open_service(
            url, create_schema=False, cache=None, encryption=encryption
        ) as svc:
            relay = OutboxRelay(svc.store, sink, clock=svc.clock, **options)
            if once:
                while await relay.run_once():
                    continue
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            print(f"paymentorch: relay running on {svc.store.backend}", file=sys.stderr)
            await relay.run(stop)
    finally:
        close = getattr(sink, "aclose", None)
        if close is not None:
            await close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
