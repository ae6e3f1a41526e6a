"""The ``paymentorch`` console command: ``migrate`` and ``worker``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from typing import Any

from paymentorch._migrate import migrate_sync
from paymentorch.adapters._require import MissingDriver
from paymentorch.domain import PaymentError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="paymentorch", description="paymentorch tools")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="create or upgrade the schema at URL")
    migrate.add_argument("url", help="postgresql://user@host:5432/db or sqlite:///path.db")
    migrate.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    worker = commands.add_parser("worker", help="carry out queued operations at URL")
    worker.add_argument("url", help="the database the services write to")
    worker.add_argument(
        "--processor",
        required=True,
        help="module:name of a PaymentProcessor, or of a function that returns one",
    )
    worker.add_argument("--batch-size", type=int, default=10, help="operations per claim")
    worker.add_argument("--once", action="store_true", help="work until nothing is due, then stop")
    args = parser.parse_args(argv)
    try:
        if args.command == "worker":
            return asyncio.run(_work(args.url, args.processor, args.batch_size, once=args.once))
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
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"--processor must look like module:name, not {spec!r}")
    found = getattr(importlib.import_module(module_name), name, None)
    if found is None:
        raise LookupError(f"{module_name} has no {name!r}")
    return found if hasattr(found, "execute") else found()


async def _work(url: str, spec: str, batch_size: int, *, once: bool) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command
    from paymentorch.worker import PaymentWorker  # noqa: PLC0415

    async with await open_service(url, processor=load_processor(spec), create_schema=False) as svc:
        worker = PaymentWorker(svc, batch_size=batch_size)
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


if __name__ == "__main__":
    raise SystemExit(main())
