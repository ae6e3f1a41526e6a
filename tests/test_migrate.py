"""Packaged migrations, the console command and the host Alembic helper."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import paymentorch as po
from paymentorch import schema
from paymentorch.adapters._sql import AUDIT_COLUMNS, PAYMENT_COLUMNS
from paymentorch.cli import main
from paymentorch.clock import utc_now
from paymentorch.domain import Change, record_change, uuid7
from paymentorch.testing import Backend
from tests.raw_sql import run_sql


async def test_migrate_creates_and_is_repeatable(tmp_path: Path) -> None:
    """Migrating twice leaves one schema at head with its own version table."""
    url = f"sqlite:///{tmp_path}/m.db"
    await po.migrate(url)
    await po.migrate(url)
    with contextlib.closing(sqlite3.connect(tmp_path / "m.db")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT version_num FROM paymentorch_alembic_version").fetchall()
    assert tables == {
        "paymentorch_payments",
        "paymentorch_audit_entries",
        "paymentorch_outbox",
        "paymentorch_operations",
        "paymentorch_inbox",
        "paymentorch_exposure",
        "paymentorch_plans",
        "paymentorch_installments",
        "paymentorch_late_fees",
        "paymentorch_request_keys",
        "paymentorch_journal_entries",
        "paymentorch_postings",
        "paymentorch_deliveries",
        "paymentorch_alembic_version",
    }
    assert version == [("0012",)]


def test_cli_prints_sql(capsys: pytest.CaptureFixture[str]) -> None:
    """`paymentorch migrate URL --sql` prints the DDL instead of running it."""
    assert main(["migrate", "postgresql://nobody@127.0.0.1:1/none", "--sql"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE paymentorch_payments" in out
    assert "amount NUMERIC NOT NULL" in out
    assert "paymentorch_alembic_version" in out


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed console command migrates a SQLite file."""
    result = subprocess.run(
        [sys.executable, "-m", "paymentorch.cli", "migrate", f"sqlite:///{tmp_path}/c.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.db").exists()


def test_cli_reports_bad_urls(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL with no schema to migrate is a short error, exit status 2."""
    assert main(["migrate", "memory://"]) == 2
    assert "postgresql or sqlite" in capsys.readouterr().err


def test_schema_matches_the_migrations(shared_backend: Backend) -> None:
    """Autogenerate finds nothing to change between the metadata and the migrated schema."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from paymentorch._migrate import sync_url

    assert shared_backend.url is not None
    engine = sa.create_engine(sync_url(shared_backend.url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE})
        diff = compare_metadata(context, schema.metadata)
    engine.dispose()
    assert diff == []


def test_include_object_leaves_paymentorch_tables_alone() -> None:
    """The helper for a host's Alembic excludes paymentorch's tables, and only those."""
    assert not schema.include_object(schema.payments, "paymentorch_payments", "table", False, None)
    assert schema.include_object(None, "orders", "table", False, None)
    index = next(iter(schema.payments.indexes))
    assert not schema.include_object(index, index.name, "index", False, None)


def _write_as_0001(url: str, changes: list[Change]) -> None:
    """Payments with unscoped keys and their creation entries, as revision 0001 stored them."""
    if url.startswith("sqlite"):
        from paymentorch.adapters.sqlite import statements as lite

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            for change in changes:
                conn.execute(
                    f"INSERT INTO paymentorch_payments ({COLUMNS_0001}) VALUES ({'?,' * 10}?)",
                    lite.payment_params(change)[:11],
                )
                audit = change.audit
                conn.execute(
                    f"INSERT INTO paymentorch_audit_entries ({AUDIT_COLUMNS})"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (audit.payment_id.hex, audit.action, None, audit.to_status.value,
                     audit.actor_id, lite.time_text(audit.at), None, None),
                )  # fmt: skip
        return
    import psycopg

    from paymentorch.adapters.postgres import statements as pg

    with psycopg.connect(url) as conn:
        for change in changes:
            conn.execute(
                f"INSERT INTO paymentorch_payments ({COLUMNS_0001}) VALUES ({'%s,' * 10}%s)",
                pg.payment_row(change)[:11],
            )
            conn.execute(
                f"INSERT INTO paymentorch_audit_entries ({AUDIT_COLUMNS}) VALUES ({'%s,' * 7}%s)",
                pg.audit_row(change.audit),
            )


ROOT = Path(__file__).resolve().parent.parent
COLUMNS_0001 = ", ".join(PAYMENT_COLUMNS.split(", ")[:11])  # a payment's columns at 0001


async def test_migration_0002_scopes_existing_keys(empty_database_url: str) -> None:
    """A database with keyed payments at 0001 upgrades: each key belongs to its creator."""
    await po.migrate(empty_database_url, revision="0001")
    now = utc_now()
    changes = [
        record_change(
            po.Payment(
                id=uuid7(),
                customer_id="ABCD-12345",
                amount=Decimal("10.00"),
                currency="USD",
                status=po.PaymentStatus.PENDING,
                created_at=now,
                updated_at=now,
                version=1,
                idempotency_key=key,
            ),
            "created",
            from_status=None,
            actor_id=actor,
        )
        for actor, key in [("alice", "order-1"), ("bob", "order-2"), ("bob", None)]
    ]
    _write_as_0001(empty_database_url, changes)
    await po.migrate(empty_database_url)
    alice = po.Actor("alice", roles={po.Role.USER})
    bob = po.Actor("bob", roles={po.Role.USER})
    async with await po.open_service(empty_database_url) as service:
        create = service.create_payment
        assert (await create("ABCD-12345", "10.00", actor=alice, idempotency_key="order-1")).id == (
            changes[0].payment.id
        )
        assert (await create("ABCD-12345", "10.00", actor=bob, idempotency_key="order-2")).id == (
            changes[1].payment.id
        )
        # Alice's key is hers alone now: bob using it gets a payment of his own.
        bobs = await create("ABCD-12345", "10.00", actor=bob, idempotency_key="order-1")
        assert bobs.id not in {c.payment.id for c in changes}
        assert await service.count_payments() == 4


async def test_migration_0006_counts_what_is_owed(empty_database_url: str) -> None:
    """Upgrading to 0006 fills each customer's exposure, exactly, from the payments that
    are Pending or Authorized."""
    await po.migrate(empty_database_url, revision="0005")
    now = utc_now()
    rows = [
        ("10.00", "USD", po.PaymentStatus.PENDING),
        ("0.10", "USD", po.PaymentStatus.PENDING),  # 0.1 + 0.2 is not 0.3 in floats
        ("0.20", "USD", po.PaymentStatus.PENDING),
        ("5.00", "USD", po.PaymentStatus.AUTHORIZED),
        ("7.00", "USD", po.PaymentStatus.CONFIRMED),
        ("3.00", "EUR", po.PaymentStatus.PENDING),
    ]
    changes = [
        record_change(
            po.Payment(uuid7(), "ABCD-12345", Decimal(amount), currency, status, now, now),
            "created",
            from_status=None,
            actor_id="ops",
        )
        for amount, currency, status in rows
    ]
    _write_as_0001(empty_database_url, changes)  # columns added since have defaults
    await po.migrate(empty_database_url)
    credit = po.CreditPolicy(limit=Decimal("100.00"), currency="USD")
    async with await po.open_service(empty_database_url, credit=credit) as service:
        assert await service.credit_exposure("ABCD-12345") == Decimal("15.30")
        assert await service.store.exposure("ABCD-12345", "EUR") == Decimal("3.00")
        assert await service.credit_exposure("WXYZ-00001") == 0


async def test_migration_0009_settles_fees_and_recounts_exposure(empty_database_url: str) -> None:
    """Upgrading to 0009 names each collection's installment, waives fees that were
    charged on installments no longer owed (never collected before), keeps those of
    installments still owed, and counts exposure in every currency from payments and plans,
    whatever it said before."""
    await po.migrate(empty_database_url, revision="0008")
    now = utc_now()
    order = po.Payment(uuid7(), "ABCD-12345", Decimal("100.00"), "USD",
                       po.PaymentStatus.CONFIRMED, now, now)  # fmt: skip
    pending = po.Payment(uuid7(), "ABCD-12345", Decimal("40.00"), "USD",
                         po.PaymentStatus.PENDING, now, now)  # fmt: skip
    _write_as_0001(empty_database_url, [
        record_change(p, "created", from_status=None, actor_id="ops") for p in (order, pending)
    ])  # fmt: skip
    pid, day = order.id, timedelta(days=14)
    installments = [(1, "paid"), (2, "overdue"), (3, "paid"), (4, "scheduled")]
    run_sql(empty_database_url, [
        ("UPDATE paymentorch_payments SET has_plan = ?, captured_amount = ? WHERE id = ?",
         (True, Decimal("100.00"), pid)),
        ("INSERT INTO paymentorch_plans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
         (pid, Decimal("100.00"), "USD", 4, 1209600, "first", "last_first", "delinquent")),
        *(("INSERT INTO paymentorch_installments VALUES (?, ?, ?, ?, ?, ?, ?)",
           (pid, n, Decimal("25.00"), now + day * (n - 1), state,
            now if state == "paid" else None, Decimal(0))) for n, state in installments),
        ("INSERT INTO paymentorch_late_fees VALUES (?, ?, ?, ?, ?)",
         (pid, 1, 3, Decimal("10.00"), now)),
        ("INSERT INTO paymentorch_late_fees VALUES (?, ?, ?, ?, ?)",
         (pid, 2, 2, Decimal("7.00"), now)),
        ("INSERT INTO paymentorch_operations (id, payment_id, kind, amount, currency, status,"
         " created_at, updated_at, idempotency_key, idempotency_scope)"
         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         (uuid7(), pid, "installment", Decimal("25.00"), "USD", "succeeded", now, now,
          "installment-3", "system")),
    ])  # fmt: skip
    await po.migrate(empty_database_url)
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with await po.open_service(empty_database_url, credit=credit) as service:
        assert await service.credit_exposure("ABCD-12345") == Decimal("90.00")
        plan = await service.plan(pid)
        assert [(f.installment, f.waived_at is not None) for f in plan.late_fees] == [
            (3, True), (2, False),
        ]  # fmt: skip
        assert (plan.fees_owed, plan.collection_amount(2)) == (Decimal("7.00"), Decimal("32.00"))
        (collection,) = await service.operations(pid)
        assert collection.installment == 3
        assert await service.rebuild_exposure() == 0


@pytest.mark.parametrize("missing", ["psycopg", "alembic"])
def test_cli_names_the_extra_for_a_missing_driver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    """Migrating PostgreSQL without its libraries says which extra to install."""
    monkeypatch.setitem(sys.modules, missing, None)
    assert main(["migrate", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'paymentorch[postgres]'" in err
    assert "Traceback" not in err


async def test_the_worker_command_carries_out_queued_operations(tmp_path: Path) -> None:
    """``paymentorch worker URL --processor module:name --once`` settles what is due."""
    from tests.children import instant_processor

    url = f"sqlite:///{tmp_path / 'w.db'}"
    credit = po.CreditPolicy.parse("10.00 USD")
    async with await po.open_service(url, processor=instant_processor(), credit=credit) as service:
        made = [
            await service.create_payment(
                "ABCD-12345", "2.00", actor=po.Actor.system(), capture_method="automatic"
            )
            for _ in range(3)
        ]
        assert await service.credit_exposure("ABCD-12345") == Decimal("6.00")
    done = await asyncio.to_thread(
        _cli, "worker", url, "--processor", "tests.children:instant_processor", "--once",
        "--credit-limit", "10.00 USD", "--lease", "30", "--lookup-schedule", "1,5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    async with await po.open_service(url, credit=credit) as service:
        for payment in made:
            assert (await service.get_payment(payment.id)).status is po.PaymentStatus.CONFIRMED
        assert await service.credit_exposure("ABCD-12345") == 0  # released as they settled
    bad = await asyncio.to_thread(_cli, "worker", url, "--processor", "nowhere")
    assert bad.returncode == 2
    assert "module:name" in bad.stderr
    for flags in (["--credit-limit", "lots"], ["--lookup-schedule", "5,-1"]):
        refused = await asyncio.to_thread(
            _cli, "worker", url, "--processor", "tests.children:instant_processor", *flags
        )
        assert refused.returncode == 2
        assert "Traceback" not in refused.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paymentorch.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
