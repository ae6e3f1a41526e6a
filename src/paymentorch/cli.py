"""The ``paymentorch`` console command: ``migrate``, ``worker``, ``relay``, ``verify``,
``rotate-key`` and ``rebuild-exposure``.

Exit statuses, for a cron job or a supervisor: 0 the work is done, 1 the work failed
(a store, a processor or a broker could not be reached, an event was not delivered),
2 the command was used wrongly. Every failure is one line on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from paymentorch._migrate import migrate_sync
from paymentorch._version import __version__
from paymentorch.adapters._require import MissingDriver
from paymentorch.domain import PaymentError, StoreError, StoreUnavailable, ValidationError
from paymentorch.domain.collections import HARD_DECLINES, CollectionPolicy
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.orchestration import LOOKUP_SCHEDULE
from paymentorch.domain.plans import LateFeePolicy

DONE, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """The command was used wrongly (exit status 2)."""


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default, when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        found = action.help or ""
        default = action.default
        if not (default is None or isinstance(default, bool) or default is argparse.SUPPRESS):
            found += " (default: %(default)s)"
        return found


class _Parser(argparse.ArgumentParser):
    """argparse, with defaults in ``--help`` and a usage error on one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paymentorch",
        description="paymentorch tools. Exit status: 0 done, 1 the work failed,"
        " 2 bad usage; a failure is one line on standard error.",
    )
    parser.add_argument("--version", action="version", version=f"paymentorch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    migrate = commands.add_parser("migrate", help="create or upgrade the schema at URL")
    migrate.add_argument("url", help="postgresql://user@host:5432/db or sqlite:///path.db")
    migrate.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    migrate.add_argument("--revision", default="head", help="target revision")
    _worker_options(commands)
    _relay_options(commands)
    rotate = commands.add_parser(
        "rotate-key",
        help="seal stored customer ids and metadata with the active key (also a first time)",
        description="Keys come from PAYMENTORCH_ENCRYPTION_KEY:"
        " index=<base64>,<active key id>=<base64>[,<older key id>=<base64>...]",
    )
    rotate.add_argument("url", help="the database the services write to")
    rotate.add_argument("--batch-size", type=_positive(int), default=200, help="rows per read")
    rebuild = commands.add_parser(
        "rebuild-exposure",
        help="recount every customer's exposure at URL from its payments and plans",
        description="Maintenance, for a database changed behind the library's back: prints"
        " how many (customer, currency) figures were wrong and are now right.",
    )
    rebuild.add_argument("url", help="the database the services write to")
    verify = commands.add_parser(
        "verify",
        help="check that payments, audit trails, events, journals, plans and exposure agree",
        description="Reads every payment at URL in batches and changes nothing; exits 1 when"
        " anything disagrees, naming the payment and the check.",
    )
    verify.add_argument("url", help="the database the services write to")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _worker_options(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="carry out queued operations and the plans' tick at URL",
        description="Carries out queued operations through the processor and, every"
        " --plans-every seconds, the plans' tick: installments due are collected (and"
        " retried, reminded and charged off by the collection policy) and overdue ones"
        " charged the late-fee policy. PAYMENTORCH_CACHE (redis://...) and"
        " PAYMENTORCH_ENCRYPTION_KEY, when set, give the worker the services' Redis cache"
        " and keys.",
    )
    worker.add_argument("url", help="the database the services write to")
    worker.add_argument(
        "--processor",
        required=True,
        help="module:name of a PaymentProcessor, or of a function that returns one",
    )
    worker.add_argument(
        "--batch-size", type=_positive(int), default=10, help="operations per claim"
    )
    worker.add_argument(
        "--once",
        action="store_true",
        help="run the plans' tick and work until nothing is due, then stop",
    )
    worker.add_argument(
        "--lease", type=_positive(float), default=60.0, help="seconds a claimed operation is held"
    )
    worker.add_argument(
        "--lookup-schedule",
        type=_seconds_list,
        default=",".join(str(int(d.total_seconds())) for d in LOOKUP_SCHEDULE),
        help="comma-separated seconds between lookups of an unknown outcome",
    )
    worker.add_argument(
        "--poll", type=_positive(float), default=0.5, help="seconds to wait when nothing is due"
    )
    worker.add_argument(
        "--credit-limit",
        metavar="'AMOUNT CURRENCY'",
        type=_credit,
        help="the credit policy the services use, such as '500.00 USD': the worker's"
        " settlements must release what they reserved",
    )
    plans = worker.add_argument_group(
        "installment plans", "The plans' tick, and the late-fee policy the services use."
    )
    plans.add_argument(
        "--plans-every", type=_positive(float), default=10.0, help="seconds between plans' ticks"
    )
    plans.add_argument(
        "--late-fee", type=_amount, metavar="AMOUNT", help="charged once an installment is overdue"
    )
    plans.add_argument(
        "--late-fee-repeat", type=_amount, metavar="AMOUNT", help="charged again if still unpaid"
    )
    plans.add_argument(
        "--late-fee-repeat-days", type=_positive(float), default=7.0, help="days before a repeat"
    )
    plans.add_argument(
        "--late-fee-grace-days", type=_days, default=0.0, help="days past due before it is overdue"
    )
    plans.add_argument(
        "--late-fee-cap-percent", type=_amount, metavar="PERCENT", help="of the order, at most"
    )
    plans.add_argument(
        "--late-fee-cap-amount", type=_amount, metavar="AMOUNT", help="a plan's fees, at most"
    )
    dunning = worker.add_argument_group(
        "collections",
        "The collection policy the services use: retries after soft declines, reminders"
        " and charge-off. On with --collections or any of its options.",
    )
    dunning.add_argument("--collections", action="store_true", help="with the defaults below")
    dunning.add_argument(
        "--retry-days", type=_days_list, metavar="DAYS,...", default=None,
        help="days after each soft decline before the next attempt (default: 1,3,7)",
    )  # fmt: skip
    dunning.add_argument(
        "--hard-declines", type=_codes, metavar="CODE,...", default=None,
        help="decline codes never retried (default: " + ",".join(sorted(HARD_DECLINES)) + ")",
    )  # fmt: skip
    dunning.add_argument(
        "--remind-days", type=_days_list, metavar="DAYS,...", default=None,
        help="days before a due date a reminder is written (default: 3)",
    )  # fmt: skip
    dunning.add_argument(
        "--charge-off-days", type=_positive(float), metavar="DAYS", default=None,
        help="days past the oldest unpaid due date a plan is charged off (default: 120)",
    )  # fmt: skip


def _relay_options(commands: Any) -> None:
    relay = commands.add_parser(
        "relay",
        help="deliver committed events from URL to a sink",
        description="PAYMENTORCH_ENCRYPTION_KEY, when set, opens events sealed at rest."
        " With --once, the exit status is 1 when a delivery failed.",
    )
    relay.add_argument("url", help="the database the services write to")
    relay.add_argument(
        "--sink",
        required=True,
        help="nats://host:4222, amqp://user:pass@host:5672/, or module:name of an"
        " EventSink (a class named there is instantiated without arguments)",
    )
    relay.add_argument("--batch-size", type=_positive(int), default=100, help="events per delivery")
    relay.add_argument(
        "--lease", type=_positive(float), default=30.0, help="seconds a claimed batch is held"
    )
    relay.add_argument(
        "--poll", type=_positive(float), default=1.0, help="seconds to wait when nothing is pending"
    )
    relay.add_argument(
        "--timeout",
        type=_positive(float),
        default=30.0,
        help="seconds one delivery may take before it counts as failed (and is retried)",
    )
    relay.add_argument("--once", action="store_true", help="deliver what is due, then stop")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 done, 1 failed, 2 bad usage)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (StoreError, StoreUnavailable) as exc:  # the database: the work failed
        _say(f"{args.command} failed: {exc}")
        return FAILED
    except (UsageError, PaymentError, MissingDriver, LookupError, ValueError) as exc:
        _say(str(exc))
        return USAGE
    except Exception as exc:  # a driver's or a broker's error: one line, no traceback
        _say(f"{args.command} failed: {type(exc).__name__}: {exc}")
        return FAILED


def _say(message: str) -> None:
    print(f"paymentorch: {' '.join(message.split())}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    if args.command == "rotate-key":
        return _rotate_key(args.url, args.batch_size)
    if args.command == "verify":
        _shared_database(args.url)
        return asyncio.run(_verify(args.url, as_json=args.json))
    if args.command == "rebuild-exposure":
        _shared_database(args.url)
        return asyncio.run(_rebuild_exposure(args.url))
    if args.command == "relay":
        _shared_database(args.url)
        options = {
            "batch_size": args.batch_size,
            "lease": timedelta(seconds=args.lease),
            "poll_interval": args.poll,
        }
        tally = _Tally(load_sink(args.sink), timeout=args.timeout)
        return asyncio.run(_relay(args.url, tally, options, once=args.once))
    if args.command == "worker":
        _shared_database(args.url)
        options = {
            "batch_size": args.batch_size,
            "lease": timedelta(seconds=args.lease),
            "lookup_schedule": args.lookup_schedule,
            "poll_interval": args.poll,
            "plans_every": timedelta(seconds=args.plans_every),
        }
        policies = {"credit": args.credit_limit, "late_fees": _late_fees(args),
                    "collections": _collections(args)}  # fmt: skip
        return asyncio.run(_work(args.url, args.processor, options, policies, once=args.once))
    output = migrate_sync(args.url, revision=args.revision, sql=args.sql)
    if output is not None:
        sys.stdout.write(output)
    else:
        _say(f"schema at {args.revision}")
    return DONE


def _shared_database(url: str) -> None:
    """A worker or a relay works on the database other processes write to."""
    if url.startswith("memory:") or url.endswith(":memory:"):
        raise UsageError(
            f"{url} lives inside one process, so this one would find nothing to do:"
            " give the database the services write to"
        )


def _late_fees(args: argparse.Namespace) -> LateFeePolicy | None:
    """The late-fee policy the options describe; None without ``--late-fee``."""
    others = (args.late_fee_repeat, args.late_fee_cap_percent, args.late_fee_cap_amount)
    if args.late_fee is None:
        if any(option is not None for option in others):
            raise UsageError("the other --late-fee-... options need --late-fee")
        return None
    return LateFeePolicy(
        args.late_fee,
        repeat_fee=args.late_fee_repeat,
        repeat_after=timedelta(days=args.late_fee_repeat_days),
        grace=timedelta(days=args.late_fee_grace_days),
        cap_percent=args.late_fee_cap_percent,
        cap_amount=args.late_fee_cap_amount,
    )


def _collections(args: argparse.Namespace) -> CollectionPolicy | None:
    """The collection policy the options describe; None when none is given."""
    given = {
        "retries": args.retry_days, "hard_declines": args.hard_declines,
        "reminders": args.remind_days,
        "charge_off_after": None if args.charge_off_days is None
        else timedelta(days=args.charge_off_days),
    }  # fmt: skip
    chosen = {name: value for name, value in given.items() if value is not None}
    if not chosen and not args.collections:
        return None
    try:
        return CollectionPolicy(**chosen)
    except ValidationError as exc:
        raise UsageError(f"collections: {exc}") from None


def _days_list(text: str) -> tuple[timedelta, ...]:
    try:
        return tuple(timedelta(days=float(part)) for part in text.split(",") if part.strip())
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not days separated by commas: {text!r}") from None


def _codes(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def load_processor(spec: str) -> Any:
    """The processor ``module:name`` names; a callable without ``execute`` is called.

    Raises:
        UsageError: what it names is not a ``PaymentProcessor``.
    """
    found = _named(spec, "--processor")
    try:
        processor = found if hasattr(found, "execute") or not callable(found) else found()
    except TypeError as exc:
        raise UsageError(f"--processor {spec} cannot be called without arguments: {exc}") from None
    missing = [
        method
        for method in ("execute", "lookup")
        if not inspect.iscoroutinefunction(getattr(processor, method, None))
    ]
    if missing or not isinstance(getattr(processor, "name", None), str):
        raise UsageError(
            f"--processor {spec} gives {type(processor).__name__}, not a PaymentProcessor"
            f" (a name and async {', '.join(missing or ['execute', 'lookup'])})"
        )
    return processor


def load_sink(spec: str) -> Any:
    """The sink ``--sink`` names: a broker URL, or ``module:name`` of an ``EventSink`` (a
    class named there is instantiated without arguments).

    Raises:
        UsageError: what it names is not an ``EventSink``.
    """
    if "://" in spec:
        from paymentorch.sinks import sink_from_url  # noqa: PLC0415 - optional drivers

        return sink_from_url(spec)
    found = _named(spec, "--sink")
    sink = found() if isinstance(found, type) else found
    if not (
        inspect.iscoroutinefunction(sink)
        or inspect.iscoroutinefunction(getattr(sink, "__call__", None))  # noqa: B004
    ):
        raise UsageError(
            f"--sink {spec} gives {type(sink).__name__}, not an EventSink"
            " (an async callable taking a list of events)"
        )
    return sink


def _named(spec: str, option: str) -> Any:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise UsageError(f"{option} must look like module:name, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{option} {spec}: {exc}") from None
    found = getattr(module, name, None)
    if found is None:
        raise UsageError(f"{option} {spec}: {module_name} has no {name!r}")
    return found


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 0 <= value <= 3650:
        raise argparse.ArgumentTypeError(f"must be from 0 to 3650 days, not {text}")
    return value


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value < 0 or value > Decimal("1e9"):
        raise argparse.ArgumentTypeError(f"must be from 0 to 1000000000, not {text}")
    return value


def _seconds_list(text: str) -> tuple[timedelta, ...]:
    try:
        delays = tuple(timedelta(seconds=float(part)) for part in text.split(","))
    except (ValueError, OverflowError):
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
    url: str, spec: str, options: dict[str, Any], policies: dict[str, Any], *, once: bool
) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command
    from paymentorch.worker import PaymentWorker  # noqa: PLC0415

    processor = load_processor(spec)
    adapters = _adapters_from_env()
    try:
        async with await open_service(
            url, processor=processor, create_schema=False, **policies, **adapters
        ) as svc:
            return await _work_with(svc, PaymentWorker(svc, **options), once=once)
    finally:
        cache = adapters.get("cache")
        if cache is not None:
            await cache.aclose()


async def _work_with(svc: Any, worker: Any, *, once: bool) -> int:
    if once:
        plans = operations = 0
        while True:  # a plan collects one installment at a time: tick until all is done
            plans += await worker.run_plans()
            worked = 0
            while done := await worker.run_once():
                worked += done
            operations += worked
            if not worked:
                break
        print(f"paymentorch: {plans} plan(s) ticked, {operations} operation(s) worked")
        return DONE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"paymentorch: worker running on {svc.store.backend}", file=sys.stderr)
    await worker.run(stop)
    return DONE


async def _verify(url: str, *, as_json: bool) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command

    async with await open_service(url, cache=None) as service:
        report = await service.verify()
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for problem in report.problems:
            about = "books" if problem.payment_id is None else f"payment {problem.payment_id}"
            print(f"{about} [{problem.check}] {problem.detail}")
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"{report.checked} payment(s) checked: {verdict}")
    return DONE if report.ok else FAILED


async def _rebuild_exposure(url: str) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command

    async with await open_service(url, cache=None) as service:
        corrected = await service.rebuild_exposure()
    print(f"{corrected} exposure figure(s) corrected")
    return DONE


def _rotate_key(url: str, batch_size: int) -> int:
    from paymentorch._rotate import rotate_key  # noqa: PLC0415 - only for this command
    from paymentorch.crypto import FieldEncryption  # noqa: PLC0415

    setting = os.environ.get("PAYMENTORCH_ENCRYPTION_KEY")
    if not setting:
        raise UsageError("set PAYMENTORCH_ENCRYPTION_KEY to the keys (see --help)")
    encryption = FieldEncryption.parse(setting)
    done = rotate_key(url, encryption, batch_size=batch_size)
    _say(
        f"sealed with {encryption.active}: {done.payments} payments,"
        f" {done.events} events, {done.exposures} exposure rows folded,"
        f" {done.receivables} receivable postings"
    )
    return DONE


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


class _Tally:
    """The sink, bounded by ``timeout``, counting what it delivered and remembering why
    a delivery failed (a broker that cannot be reached may keep a client trying)."""

    def __init__(self, sink: Any, *, timeout: float) -> None:
        self.sink = sink
        self.timeout = timeout
        self.delivered = 0
        self.failure: str | None = None

    async def __call__(self, events: Sequence[Any]) -> None:
        try:
            await asyncio.wait_for(self.sink(events), self.timeout)
        except Exception as exc:
            why = f"no answer within {self.timeout:g} s" if isinstance(exc, TimeoutError) else exc
            self.failure = f"{len(events)} event(s) not delivered: {type(exc).__name__}: {why}"
            raise
        self.delivered += len(events)


async def _relay(url: str, tally: _Tally, options: dict[str, Any], *, once: bool) -> int:
    from paymentorch._open import open_service  # noqa: PLC0415 - only for this command
    from paymentorch.outbox import OutboxRelay  # noqa: PLC0415

    sink = tally.sink
    try:
        encryption = _adapters_from_env().get("encryption")
        async with await open_service(
            url, create_schema=False, cache=None, encryption=encryption
        ) as svc:
            relay = OutboxRelay(svc.store, tally, clock=svc.clock, **options)
            if once:
                while await relay.run_once():
                    continue
                print(f"paymentorch: delivered {tally.delivered} event(s)")
                if tally.failure is not None:
                    _say(f"relay failed: {tally.failure}")
                    return FAILED
                return DONE
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
    return DONE


if __name__ == "__main__":
    raise SystemExit(main())
