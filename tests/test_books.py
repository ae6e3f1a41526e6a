"""The books on the SQL stores: ``verify`` reports tampering done in SQL with its payment,
``paymentorch verify`` exits 1 on a problem, and migration 0011 opens the books of a
database written at 0010 so that they agree from the start."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

import paymentorch as po
from paymentorch.cli import main
from paymentorch.clock import utc_now
from paymentorch.domain import record_change, uuid7
from tests.raw_sql import run_sql

ADMIN = po.Actor("ops", roles={po.Role.ADMIN})
CUSTOMER = "ABCD-12345"


@pytest.fixture
async def books(empty_database_url: str) -> tuple[str, dict[str, uuid.UUID]]:
    """A migrated database with a plain payment refunded in part, a plan with an
    installment paid and one waived, a plan charged off and paid in part after (a
    recovery), and a Pending payment; each clean."""
    url = empty_database_url
    await po.migrate(url)
    async with await po.open_service(url) as service:
        plain = await service.create_payment(CUSTOMER, "100.00", actor=ADMIN)
        await service.confirm_payment(plain.id, actor=ADMIN)
        await service.refund_payment(plain.id, "30.00", actor=ADMIN)
        order = await service.create_payment(CUSTOMER, "100.00", actor=ADMIN, plan=po.PlanTerms())
        await service.confirm_payment(order.id, actor=ADMIN)
        await service.pay_installment(order.id, 2, actor=ADMIN)
        await service.waive_installment(order.id, 3, actor=ADMIN, reason="hardship")
        lost = await service.create_payment(CUSTOMER, "100.00", actor=ADMIN, plan=po.PlanTerms())
        await service.confirm_payment(lost.id, actor=ADMIN)
        await service.charge_off(lost.id, actor=ADMIN, reason="past due")
        await service.pay_installment(lost.id, 2, actor=ADMIN)
        waiting = await service.create_payment(CUSTOMER, "40.00", actor=ADMIN)
        assert (await service.verify()).ok
    return url, {"plain": plain.id, "order": order.id, "lost": lost.id, "waiting": waiting.id}


async def _found(url: str) -> set[tuple[uuid.UUID | None, str]]:
    async with await po.open_service(url) as service:
        report = await service.verify()
    assert report.checked == 4
    return {(p.payment_id, p.check) for p in report.problems}


@pytest.mark.parametrize(
    ("tampering", "expected"),
    [
        (  # a status written by hand
            [("UPDATE paymentorch_payments SET status = 'Refunded' WHERE id = ?", ("plain",))],
            {("plain", "status")},
        ),
        (  # an audit entry deleted: the chain breaks
            [
                (
                    "DELETE FROM paymentorch_audit_entries WHERE payment_id = ?"
                    " AND action = 'confirmed'",
                    ("order",),
                )
            ],
            {("order", "audit")},
        ),
        (  # a posting edited in place: the entry no longer balances, nor do the books
            [
                (
                    "UPDATE paymentorch_postings SET amount = amount + 1 WHERE payment_id = ?"
                    " AND account_kind = 'payable'",
                    ("plain",),
                )
            ],
            {("plain", "journal"), (None, "journal")},
        ),
        (  # an event that never was
            [("DELETE FROM paymentorch_outbox WHERE payment_id = ?", ("waiting",))],
            {("waiting", "events")},
        ),
        (  # an installment marked paid with no money: the plan, its journal and the
            # customer's exposure no longer agree with it
            [
                (
                    "UPDATE paymentorch_installments SET status = 'paid' WHERE payment_id = ?"
                    " AND number = 4",
                    ("order",),
                )
            ],
            {("order", "plan"), ("order", "journal"), (None, "exposure")},
        ),
        (  # a customer's exposure rewritten
            [("UPDATE paymentorch_exposure SET amount = 0 WHERE customer_id = ?", (CUSTOMER,))],
            {(None, "exposure")},
        ),
        (  # a plan charged off by hand, with nothing written off
            [
                (
                    "UPDATE paymentorch_plans SET status = 'charged_off' WHERE payment_id = ?",
                    ("order",),
                )
            ],
            {("order", "journal")},
        ),
        (  # a recovery's entry deleted whole: the books still balance, the payment does not
            [
                (
                    f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM"
                    " paymentorch_journal_entries WHERE payment_id = ? AND kind = 'recovery')",
                    ("lost",),
                )
                for table, column in (
                    ("paymentorch_postings", "entry_id"),
                    ("paymentorch_journal_entries", "id"),
                )
            ],
            {("lost", "journal")},
        ),
    ],
    ids=[
        "status",
        "audit",
        "posting",
        "event",
        "installment",
        "exposure",
        "charged-off",
        "recovery",
    ],
)
async def test_verify_reports_tampering_with_its_payment(
    books: tuple[str, dict[str, uuid.UUID]],
    tampering: list[tuple[str, tuple[str, ...]]],
    expected: set[tuple[str | None, str]],
) -> None:
    """Each kind of change made in SQL behind the library's back is reported under the
    check it breaks, with the payment it was made to; nothing else is."""
    url, ids = books
    run_sql(url, [(sql, tuple(ids.get(p, p) for p in params)) for sql, params in tampering])
    assert await _found(url) == {(ids.get(p) if p else None, check) for p, check in expected}


def test_verify_command_exits_1_on_a_problem(
    books: tuple[str, dict[str, uuid.UUID]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``paymentorch verify URL`` exits 0 on clean books and 1 with the problem listed;
    ``--json`` prints the report as DESIGN shapes it."""
    url, ids = books
    assert main(["verify", url]) == 0
    assert "4 payment(s) checked: ok" in capsys.readouterr().out
    run_sql(
        url, [("UPDATE paymentorch_payments SET status = 'Failed' WHERE id = ?", (ids["plain"],))]
    )
    assert main(["verify", url, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["checked"]) == (False, 4)
    assert report["problems"] == [
        {"payment_id": str(ids["plain"]), "check": "status",
         "detail": "is Failed, its last audit entry says Confirmed"},
    ]  # fmt: skip
    assert main(["verify", url]) == 1
    assert f"payment {ids['plain']} [status]" in capsys.readouterr().out


async def test_verify_changes_nothing(books: tuple[str, dict[str, uuid.UUID]]) -> None:
    """The check reads only: the books and the payments are as they were, to the row."""
    url, ids = books

    async def state() -> Any:
        async with await po.open_service(url) as service:
            return (
                [await service.get_payment(pid) for pid in ids.values()],
                [await service.journal(pid) for pid in ids.values()],
                await service.trial_balance(),
                await service.store.outbox_stats(),
            )

    before = await state()
    async with await po.open_service(url) as service:
        await service.verify()
        await service.verify()
    assert await state() == before


async def test_migration_0011_opens_the_books(empty_database_url: str) -> None:
    """A database written at 0010 (a plain payment captured and partly refunded, a
    delinquent plan with a paid installment and an unpaid fee, a Pending payment) gets one
    opening entry per payment that holds money, and its books agree from the start and
    after the next movement."""
    url = empty_database_url
    await po.migrate(url, revision="0010")
    now = utc_now()
    plain = po.Payment(uuid7(), CUSTOMER, Decimal("50.00"), "USD", po.PaymentStatus.CONFIRMED,
                       now, now, captured_amount=Decimal("50.00"),
                       refunded_amount=Decimal("10.00"))  # fmt: skip
    order = po.Payment(uuid7(), CUSTOMER, Decimal("100.00"), "USD", po.PaymentStatus.CONFIRMED,
                       now, now, captured_amount=Decimal("100.00"), has_plan=True)  # fmt: skip
    waiting = po.Payment(uuid7(), CUSTOMER, Decimal("40.00"), "USD", po.PaymentStatus.PENDING,
                         now, now)  # fmt: skip
    rows: list[tuple[str, tuple[Any, ...]]] = []
    for payment in (plain, order, waiting):
        change = record_change(payment, "created", from_status=None, actor_id="ops")
        p, e = change.payment, change.event
        rows += [
            ("INSERT INTO paymentorch_payments (id, customer_id, amount, currency, status,"
             " created_at, updated_at, version, metadata, captured_amount, refunded_amount,"
             " pending_refunds, has_plan) VALUES (?, ?, ?, ?, ?, ?, ?, 1, '{}', ?, ?, 0, ?)",
             (p.id, p.customer_id, p.amount, p.currency, p.status.value, now, now,
              p.captured_amount, p.refunded_amount, p.has_plan)),
            ("INSERT INTO paymentorch_audit_entries (payment_id, action, to_status, actor_id, at)"
             " VALUES (?, 'created', ?, 'ops', ?)", (p.id, p.status.value, now)),
            ("INSERT INTO paymentorch_outbox (event_id, payment_id, type, occurred_at, payload,"
             " actor_id) VALUES (?, ?, 'payment.created', ?, '{}', 'ops')", (e.id, p.id, now)),
        ]  # fmt: skip
    pid, day = order.id, timedelta(days=14)
    states = [(1, "paid"), (2, "overdue"), (3, "scheduled"), (4, "scheduled")]
    rows += [
        ("INSERT INTO paymentorch_plans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
         (pid, Decimal("100.00"), "USD", 4, 1209600, "first", "last_first", "delinquent")),
        *(("INSERT INTO paymentorch_installments VALUES (?, ?, ?, ?, ?, ?, ?)",
           (pid, n, Decimal("25.00"), now - day + day * (n - 1), state,
            now if state == "paid" else None, Decimal(0))) for n, state in states),
        ("INSERT INTO paymentorch_late_fees (payment_id, seq, installment, amount, charged_at)"
         " VALUES (?, ?, ?, ?, ?)", (pid, 1, 2, Decimal("7.00"), now)),
        ("INSERT INTO paymentorch_exposure VALUES (?, ?, ?)", (CUSTOMER, "USD", Decimal("115.00"))),
    ]  # fmt: skip
    run_sql(url, rows)
    await po.migrate(url)
    async with await po.open_service(url) as service:
        assert (await service.verify()).problems == ()
        assert await service.journal(waiting.id) == []
        (opening,) = await service.journal(order.id)
        lines = {(p.account.kind.value, p.account.owner, str(p.amount)) for p in opening.lines}
        assert (opening.kind, opening.operation_id) == ("opening", None)
        assert lines == {
            ("receivable", CUSTOMER, "82.00"), ("clearing", "manual", "25.00"),
            ("fees", "", "-7.00"), ("payable", "default", "-100.00"),
        }  # fmt: skip
        (opening,) = await service.journal(plain.id)
        assert {(p.account.kind.value, str(p.amount)) for p in opening.lines} == {
            ("clearing", "40.00"), ("payable", "-40.00"),
        }  # fmt: skip
        await service.pay_installment(order.id, 2, actor=ADMIN)
        assert [e.kind for e in await service.journal(order.id)] == ["opening", "installment"]
        receivable = po.Account(po.AccountKind.RECEIVABLE, CUSTOMER, "USD")
        assert await service.balance(receivable) == Decimal("50.00")
        assert (await service.verify()).ok
