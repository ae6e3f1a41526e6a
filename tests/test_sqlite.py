"""SQLite specifics: exact money on disk, durability settings and URLs."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import paymentorch as po
from paymentorch.adapters import open_store
from paymentorch.adapters.sqlite.statements import database_path, time_text

pytestmark = pytest.mark.sqlite
ADMIN = po.Actor.system()


async def test_money_is_text_never_real(tmp_path: Path) -> None:
    """Amounts are stored as exact decimal text, never as a floating-point REAL."""
    path = tmp_path / "p.db"
    async with await po.open_service(f"sqlite:///{path}") as service:
        await service.create_payment("ABCD-12345", "0.10", actor=ADMIN)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute(
            "SELECT amount, typeof(amount) FROM paymentorch_payments"
        ).fetchone() == (
            "0.10",
            "text",
        )


async def test_exposure_moves_in_exact_decimals_in_one_statement(tmp_path: Path) -> None:
    """The exposure row is moved by SQL (no read first) in exact decimal text: ten
    payments of 0.10 make 1.00, where SQLite's float arithmetic would make
    0.9999999999999999; confirming them all brings it to 0, never below."""
    path = tmp_path / "p.db"
    async with await po.open_service(f"sqlite:///{path}") as service:
        made = [await service.create_payment("ABCD-12345", "0.10", actor=ADMIN) for _ in range(10)]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            query = "SELECT amount, typeof(amount) FROM paymentorch_exposure"
            assert conn.execute(query).fetchall() == [("1.00", "text")]
            for payment in made:
                await service.confirm_payment(payment.id, actor=ADMIN)
            assert conn.execute(query).fetchall() == [("0", "text")]
        assert await service.credit_exposure("ABCD-12345") == 0
        assert (await service.verify()).ok


def test_time_text_is_fixed_width_utc_in_time_order() -> None:
    """Times are stored as text whose order is time order: fixed width (years before
    1000 padded), converted to UTC."""
    times = [
        datetime(5, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 5, 8, 30, 45, 660398, tzinfo=UTC),
        datetime(2026, 12, 5, 10, 0, tzinfo=timezone(timedelta(hours=1))),
    ]
    texts = [time_text(t) for t in times]
    assert texts == [
        "0005-01-01T00:00:00.000000Z",
        "0999-12-31T23:59:59.000000Z",
        "2026-12-05T08:30:45.660398Z",
        "2026-12-05T09:00:00.000000Z",
    ]
    assert texts == sorted(texts)


@pytest.mark.parametrize(("durability", "expected"), [("normal", 1), ("full", 2)])
async def test_durability_sets_synchronous(tmp_path: Path, durability: str, expected: int) -> None:
    """durability='normal' is synchronous=NORMAL; 'full' is FULL; WAL either way."""
    store = await open_store(f"sqlite:///{tmp_path}/d.db", durability=durability)
    try:
        conn = store._conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == expected
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.aclose()


async def test_bad_durability_is_refused(tmp_path: Path) -> None:
    """An unknown durability is a ValidationError."""
    with pytest.raises(po.ValidationError):
        await open_store(f"sqlite:///{tmp_path}/d.db", durability="maybe")


def test_urls() -> None:
    """Three slashes for a relative path, four for an absolute one."""
    assert database_path("sqlite:///payments.db") == "payments.db"
    assert database_path("sqlite:////var/data/p.db") == "/var/data/p.db"
    with pytest.raises(po.ValidationError):
        database_path("sqlite://payments.db")


async def test_unopenable_file_is_store_unavailable(tmp_path: Path) -> None:
    """A path that cannot be opened gives StoreUnavailable, not a sqlite3 error."""
    with pytest.raises(po.StoreUnavailable):
        await open_store(f"sqlite:///{tmp_path}/missing/dir/p.db", create_schema=False)


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    """Calls on a closed store raise StoreUnavailable; health says down."""
    service = await po.open_service(f"sqlite:///{tmp_path}/c.db")
    await service.aclose()
    with pytest.raises(po.StoreUnavailable):
        await service.count_payments()
    assert (await service.health()).status == "down"


async def test_a_writer_waits_for_another_connections_lock(tmp_path: Path) -> None:
    """While another connection holds the write lock, a change waits for it, then lands."""
    path = tmp_path / "w.db"
    service = await po.open_service(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        creating = asyncio.ensure_future(service.create_payment("ABCD-12345", "1.00", actor=ADMIN))
        with pytest.raises(TimeoutError):  # still waiting for the lock, not failed
            await asyncio.wait_for(asyncio.shield(creating), timeout=0.3)
        blocker.execute("COMMIT")
        payment = await creating
        assert await service.get_payment(payment.id) == payment
        assert await service.count_payments() == 1
    finally:
        blocker.close()
        await service.aclose()


async def test_missing_schema_names_the_fix(tmp_path: Path) -> None:
    """A file without the tables, opened without creating them, says how to create them."""
    with pytest.raises(po.StoreError, match="migrate"):
        await open_store(f"sqlite:///{tmp_path}/empty.db", create_schema=False)


async def test_a_private_in_memory_database_opens() -> None:
    """sqlite:///:memory: opens with its schema and works like a file."""
    async with await po.open_service("sqlite:///:memory:") as service:
        payment = await service.create_payment("ABCD-12345", "1.00", actor=ADMIN)
        await service.confirm_payment(payment.id, actor=ADMIN)
        assert await service.count_payments(status=po.PaymentStatus.CONFIRMED) == 1


def test_a_private_in_memory_database_opens_in_the_twin() -> None:
    """The blocking twin opens sqlite:///:memory: too, each twin with a database of its own."""
    with po.open_sync_service("sqlite:///:memory:") as twin:
        assert twin.count_payments() == 0
        twin.create_payment("ABCD-12345", "1.00", actor=ADMIN)
        assert twin.count_payments() == 1


async def test_large_batches_never_hold_the_event_loop(tmp_path: Path) -> None:
    """While 20,000 payments are written in one batch, other tasks keep running."""
    async with await po.open_service(f"sqlite:///{tmp_path / 'p.db'}") as service:
        ticks = 0
        writing = True

        async def ticker() -> None:
            nonlocal ticks
            while writing:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = ticks
        await service.create_payments(
            [po.NewPayment("ABCD-12345", "1.00") for _ in range(20_000)], actor=ADMIN
        )
        during = ticks - started
        writing = False
        await task
        page = await service.list_payments(limit=500)
        assert await service.count_payments() == 20_000
        assert len(page.items) == 500
    # The batch took many milliseconds on the store's thread; the loop went round meanwhile.
    assert during > 10


def _statements(service: po.PaymentService) -> list[str]:
    """Every statement ``service``'s store runs from now on."""
    seen: list[str] = []
    service._ctx.store._conn.set_trace_callback(seen.append)  # type: ignore[attr-defined]
    return seen


def _reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def test_a_payment_it_created_is_changed_without_a_read(tmp_path: Path) -> None:
    """The first transition of a payment this store created decides on the payment as
    it wrote it: the guarded update and its records, no SELECT; later ones read."""
    async with await po.open_service(f"sqlite:///{tmp_path}/p.db") as service:
        statements = _statements(service)
        payment = await service.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        statements.clear()
        confirmed = await service.confirm_payment(payment.id, actor=ADMIN)
        assert _reads(statements) == []
        assert (confirmed.status, confirmed.version) == (po.PaymentStatus.CONFIRMED, 2)
        assert await service.get_payment(payment.id) == confirmed
        statements.clear()
        await service.refund_payment(payment.id, "4.00", actor=ADMIN)
        assert _reads(statements) != []
        assert (await service.verify()).ok


async def test_a_payment_changed_elsewhere_is_read_and_decided_as_it_is(
    tmp_path: Path,
) -> None:
    """A payment another process changed after this store created it fails the guarded
    update; the store reads it in the same transaction and decides on it as it is: the
    audit entry starts from its real status, the exposure and the books follow it."""
    url = f"sqlite:///{tmp_path}/p.db"
    async with await po.open_service(url) as mine, await po.open_service(url) as theirs:
        payment = await mine.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        await theirs.authorize_payment(payment.id, actor=ADMIN)
        statements = _statements(mine)
        cancelled = await mine.cancel_payment(payment.id, actor=ADMIN)
        assert _reads(statements) != []
        assert (cancelled.status, cancelled.version) == (po.PaymentStatus.CANCELLED, 3)
        trail = await mine.audit_trail(payment.id)
        assert [(e.from_status, e.to_status) for e in trail][-1] == (
            po.PaymentStatus.AUTHORIZED,
            po.PaymentStatus.CANCELLED,
        )
        other = await mine.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        await theirs.confirm_payment(other.id, actor=ADMIN)
        with pytest.raises(po.InvalidTransition):
            await mine.confirm_payment(other.id, actor=ADMIN)
        assert await mine.credit_exposure("ABCD-12345") == 0
        assert (await mine.verify()).ok


async def test_a_payment_created_long_ago_or_before_a_purge_is_read(tmp_path: Path) -> None:
    """A payment kept as written serves its first transition for an hour after its
    creation (by the service's clock), and not after a purge of idempotency keys."""
    now = [datetime(2026, 12, 5, 9, 0, tzinfo=UTC)]
    url = f"sqlite:///{tmp_path}/p.db"
    async with await po.open_service(url, clock=lambda: now[0]) as service:
        statements = _statements(service)
        old = await service.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        now[0] += timedelta(hours=1)
        statements.clear()
        await service.confirm_payment(old.id, actor=ADMIN)
        assert _reads(statements) != []
        purged = await service.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        await service.purge_idempotency_keys(timedelta(days=1))
        statements.clear()
        await service.confirm_payment(purged.id, actor=ADMIN)
        assert _reads(statements) != []


def test_a_kept_payment_races_another_connection_for_its_first_change(tmp_path: Path) -> None:
    """Confirmations decided on payments as this store wrote them race, thread against
    thread, another connection's cancellations taken in the opposite order (which of
    them waits out the other's lock is up to SQLite): each payment takes exactly one of
    them, and the exposure and the books add up."""
    from concurrent.futures import ThreadPoolExecutor

    from paymentorch.sync import open_sync_service

    url = f"sqlite:///{tmp_path}/p.db"
    with open_sync_service(url) as mine, open_sync_service(url) as theirs:
        made = [mine.create_payment("ABCD-12345", "10.00", actor=ADMIN) for _ in range(200)]

        start = threading.Barrier(2)

        def each(call: Any, order: list[po.Payment]) -> list[object]:
            outcomes: list[object] = []
            start.wait()
            for payment in order:
                try:
                    outcomes.append(call(payment.id, actor=ADMIN))
                except po.InvalidTransition as exc:
                    outcomes.append(exc)
            return outcomes

        with ThreadPoolExecutor(2) as pool:
            confirming = pool.submit(each, mine.confirm_payment, made)
            cancelling = pool.submit(each, theirs.cancel_payment, made[::-1])
            confirmed, cancelled = confirming.result(), cancelling.result()[::-1]
        wins = [isinstance(a, po.Payment) + isinstance(b, po.Payment)
                for a, b in zip(confirmed, cancelled, strict=True)]  # fmt: skip
        assert wins == [1] * len(made)
        assert all(len(mine.audit_trail(p.id)) == 2 for p in made)
        assert mine.credit_exposure("ABCD-12345") == 0
        assert mine.verify().ok


def test_a_hosts_own_adapter_of_none_is_kept() -> None:
    """The store binds None through an adapter of None to itself, registered at import
    unless the host registered its own, which it keeps."""
    import subprocess
    import sys

    script = (
        "import sqlite3\n"
        "sqlite3.register_adapter(type(None), lambda value: 'host')\n"
        "import paymentorch.adapters.sqlite.connection\n"
        "print(sqlite3.connect(':memory:').execute('SELECT ?', (None,)).fetchone())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "('host',)"
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        assert conn.execute("SELECT ? IS NULL", (None,)).fetchone() == (1,)
