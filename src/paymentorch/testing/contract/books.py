"""The contract's books tests: every money movement posts one balanced entry with its
change, nothing else posts, entries are never changed, and the books equal the payments
however many changes race."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from paymentorch.domain import (
    AmountExceeded,
    InvalidTransition,
    Operation,
    PaymentNotFound,
    ValidationError,
    uuid7,
)
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.plans import PlanTerms
from paymentorch.service import PaymentService
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._money import service_books_problems
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER, _events
from paymentorch.testing.contract.money import FEES, Clock, _drain, _processor
from paymentorch.worker import PaymentWorker

OTHER = "WXYZ-67890"


def _lines(entry: JournalEntry) -> set[tuple[str, str, str]]:
    """An entry's lines as (kind, owner, amount) text, to compare with what DESIGN posts."""
    return {(p.account.kind.value, p.account.owner, str(p.amount)) for p in entry.lines}


async def _agree(service: PaymentService, *payment_ids: UUID, processors: Any = ()) -> None:
    """The books against everything the store holds (``payment_ids``: every payment)."""
    problems = await service_books_problems(service, payment_ids, processors)
    assert problems == [], problems


class TestBooks:
    """The books: a balanced journal entry with every money movement, in the same write."""

    pytestmark = pytest.mark.asyncio

    async def test_each_movement_posts_what_design_says(self, backend: Backend) -> None:
        """Captures and confirmations, a plan's confirmation, an installment paid by hand,
        a waiver and refunds post their entries; authorizations, cancellations and failures
        post nothing."""
        async with service_on(backend) as service:
            plain = await service.create_payment(CUSTOMER, "100.00", actor=USER)
            assert await service.journal(plain.id) == []
            await service.confirm_payment(plain.id, actor=ADMIN)
            await service.refund_payment(plain.id, "30.00", actor=ADMIN)
            held = await service.create_payment(CUSTOMER, "80.00", actor=USER)
            await service.authorize_payment(held.id, actor=ADMIN)
            assert await service.journal(held.id) == []
            await service.capture_payment(held.id, amount="50.00", actor=ADMIN)
            gone_ids = []
            for action in ("cancel", "fail"):
                gone = await service.create_payment(CUSTOMER, "10.00", actor=USER)
                gone_ids.append(gone.id)
                await service.authorize_payment(gone.id, actor=ADMIN)
                if action == "cancel":
                    await service.cancel_payment(gone.id, actor=ADMIN)
                else:
                    await service.fail_payment(gone.id, reason="declined", actor=ADMIN)
                assert await service.journal(gone.id) == []
            order = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            await service.confirm_payment(order.id, actor=ADMIN)
            await service.pay_installment(order.id, 2, actor=ADMIN)
            await service.waive_installment(order.id, 3, actor=ADMIN, reason="hardship")
            await service.refund_payment(order.id, "10.00", actor=ADMIN)

            capture, refund = await service.journal(plain.id)
            assert (capture.kind, refund.kind) == ("capture", "refund")
            assert _lines(capture) == {("clearing", "manual", "100.00"),
                                       ("payable", "default", "-100.00")}  # fmt: skip
            assert _lines(refund) == {("payable", "default", "30.00"),
                                      ("clearing", "manual", "-30.00")}  # fmt: skip
            (partial,) = await service.journal(held.id)
            assert _lines(partial) == {("clearing", "manual", "50.00"),
                                       ("payable", "default", "-50.00")}  # fmt: skip
            entries = await service.journal(order.id)
            assert [e.kind for e in entries] == ["capture", "installment", "waiver", "refund"]
            assert _lines(entries[0]) == {
                ("clearing", "manual", "25.00"), ("receivable", CUSTOMER, "75.00"),
                ("payable", "default", "-100.00"),
            }  # fmt: skip
            assert _lines(entries[1]) == {("clearing", "manual", "25.00"),
                                          ("receivable", CUSTOMER, "-25.00")}  # fmt: skip
            assert _lines(entries[2]) == {("writeoffs", "", "25.00"),
                                          ("receivable", CUSTOMER, "-25.00")}  # fmt: skip
            # 10.00 off the unpaid last installment: the customer owes less, nothing goes back.
            assert _lines(entries[3]) == {("payable", "default", "10.00"),
                                          ("receivable", CUSTOMER, "-10.00")}  # fmt: skip
            assert all(e.payment_id == order.id and e.at.tzinfo for e in entries)
            receivable = Account(AccountKind.RECEIVABLE, CUSTOMER, "USD")
            assert await service.balance(receivable) == Decimal("15.00")
            await _agree(service, plain.id, held.id, order.id, *gone_ids)

    async def test_a_late_fee_posts_its_own_entry(self, backend: Backend) -> None:
        """A fee charged is income the customer owes (its own entry); paying the installment
        pays it with it, in one entry."""
        clock = Clock()
        async with service_on(backend, clock=clock, late_fees=FEES) as service:
            order = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            await service.confirm_payment(order.id, actor=ADMIN)
            clock.advance(timedelta(days=15))
            assert await service.process_overdue() == 1
            await service.pay_installment(order.id, 2, actor=ADMIN)
            kinds = [e.kind for e in await service.journal(order.id)]
            assert kinds == ["capture", "late_fee", "installment"]
            _capture, fee, paid = await service.journal(order.id)
            assert _lines(fee) == {("receivable", CUSTOMER, "10.00"), ("fees", "", "-10.00")}
            assert _lines(paid) == {("clearing", "manual", "35.00"),
                                    ("receivable", CUSTOMER, "-35.00")}  # fmt: skip
            assert await service.balance(Account(AccountKind.FEES, "", "USD")) == Decimal("-10.00")
            await _agree(service, order.id)

    async def test_money_through_a_processor_clears_through_it(self, backend: Backend) -> None:
        """What a processor collects or gives back passes through its clearing account,
        which holds exactly what it really moved."""
        processor = _processor(name="acme")
        async with service_on(backend, processor=processor) as service:
            worker = PaymentWorker(service)
            order = await service.create_payment(
                CUSTOMER, "200.00", actor=USER, capture_method="automatic", plan=PlanTerms()
            )
            plain = await service.create_payment(
                OTHER, "40.00", actor=USER, capture_method="automatic"
            )
            await _drain(worker)
            await service.refund_payment(plain.id, "15.00", actor=ADMIN)
            await _drain(worker)
            (capture,) = await service.journal(order.id)
            assert ("clearing", "acme", "50.00") in _lines(capture)
            assert capture.operation_id is not None
            _charge, refund = await service.journal(plain.id)
            assert _lines(refund) == {("payable", "default", "15.00"),
                                      ("clearing", "acme", "-15.00")}  # fmt: skip
            acme = Account(AccountKind.CLEARING, "acme", "USD")
            assert (
                await service.balance(acme)
                == Decimal("75.00")
                == (processor.moved(order.id) + processor.moved(plain.id))
            )
            await _agree(service, order.id, plain.id, processors=[processor])

    async def test_racing_refunds_leave_books_equal_to_the_payments(self, backend: Backend) -> None:
        """Sixteen refunds racing on a plain payment and on a plan: the winners post one
        entry each, the losers nothing, and the books equal the payments."""
        async with service_on(backend, cache=None) as service:
            plain = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            order = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            for payment in (plain, order):
                await service.confirm_payment(payment.id, actor=ADMIN)
            results = await asyncio.gather(
                *(service.refund_payment(plain.id, "1.00", actor=ADMIN) for _ in range(16)),
                *(service.refund_payment(order.id, "15.00", actor=ADMIN) for _ in range(16)),
                return_exceptions=True,
            )
            won = [r.payment_id for r in results if isinstance(r, Operation)]
            assert (won.count(plain.id), won.count(order.id)) == (10, 6)
            lost = {type(r) for r in results if not isinstance(r, Operation)}
            assert lost == {InvalidTransition, AmountExceeded}  # refunded in full; not enough left
            plain_entries = await service.journal(plain.id)
            assert [e.kind for e in plain_entries] == ["capture"] + ["refund"] * 10
            assert [e.kind for e in await service.journal(order.id)] == ["capture"] + ["refund"] * 6
            payable = Account(AccountKind.PAYABLE, "default", "USD")
            assert await service.balance(payable) == Decimal("-10.00")  # 100 - 90 on the plan
            await _agree(service, plain.id, order.id)

    async def test_entries_are_never_changed(self, backend: Backend) -> None:
        """A payment's journal only grows: each change appends its entry and leaves the
        ones before as they were."""
        async with service_on(backend) as service:
            order = await service.create_payment(CUSTOMER, "90.00", actor=USER, plan=PlanTerms(3))
            await service.confirm_payment(order.id, actor=ADMIN)
            seen: list[JournalEntry] = []
            for step in (
                service.pay_installment(order.id, 2, actor=ADMIN),
                service.refund_payment(order.id, "5.00", actor=ADMIN),
                service.pay_installment(order.id, 3, actor=ADMIN),
            ):
                before = await service.journal(order.id)
                assert before[: len(seen)] == seen
                await step
                seen = await service.journal(order.id)
                assert seen[: len(before)] == before
                assert len(seen) == len(before) + 1
            assert [e.id for e in seen] == sorted(e.id for e in seen)

    async def test_balances_and_the_trial_balance(self, backend: Backend) -> None:
        """An account never posted to is 0; the trial balance lists each kind and currency
        with postings, and sums to zero in each currency; owners and currencies are kept
        apart."""
        async with service_on(backend) as service:
            assert await service.trial_balance() == {}
            never = Account(AccountKind.RECEIVABLE, CUSTOMER, "USD")
            assert await service.balance(never) == 0
            dollars = await service.create_payment(CUSTOMER, "12.34", actor=USER, plan=PlanTerms(2))
            euros = await service.create_payment(OTHER, "50.00", actor=USER, currency="EUR")
            yen = await service.create_payment(OTHER, "1000", actor=USER, currency="JPY")
            for payment in (dollars, euros, yen):
                await service.confirm_payment(payment.id, actor=ADMIN)
            trial = await service.trial_balance()
            assert trial == {
                (AccountKind.CLEARING, "USD"): Decimal("6.17"),
                (AccountKind.RECEIVABLE, "USD"): Decimal("6.17"),
                (AccountKind.PAYABLE, "USD"): Decimal("-12.34"),
                (AccountKind.CLEARING, "EUR"): Decimal("50.00"),
                (AccountKind.PAYABLE, "EUR"): Decimal("-50.00"),
                (AccountKind.CLEARING, "JPY"): Decimal("1000"),
                (AccountKind.PAYABLE, "JPY"): Decimal("-1000"),
            }
            assert await service.balance(never) == Decimal("6.17")
            assert await service.balance(Account(AccountKind.RECEIVABLE, OTHER, "USD")) == 0
            assert await service.balance(Account(AccountKind.RECEIVABLE, CUSTOMER, "EUR")) == 0
            assert str(await service.balance(Account(AccountKind.PAYABLE, "default", "JPY"))) == (
                "-1000"
            )
            await _agree(service, dollars.id, euros.id, yen.id)

    async def test_reading_the_books_checks_its_input(self, backend: Backend) -> None:
        """A journal of no payment is PaymentNotFound, of a malformed id a ValidationError;
        a balance of something that is not an account is a ValidationError."""
        async with service_on(backend) as service:
            with pytest.raises(PaymentNotFound):
                await service.journal(uuid7())
            with pytest.raises(ValidationError):
                await service.journal("not-a-uuid")
            for bad in ("receivable", Account("receivable", CUSTOMER, "USD")):  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    await service.balance(bad)  # type: ignore[arg-type]

    async def test_verify_follows_events_waiting_and_delivered(self, backend: Backend) -> None:
        """``verify`` finds each change's event whether it still waits in the outbox or was
        delivered, and checks every payment."""
        async with service_on(backend) as service:
            first = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            await service.confirm_payment(first.id, actor=ADMIN)
            await _events(service.store)
            second = await service.create_payment(CUSTOMER, "20.00", actor=USER)
            report = await service.verify()
            assert (report.ok, report.checked, report.problems) == (True, 2, ())
            await service.refund_payment(first.id, "10.00", actor=ADMIN)
            await _events(service.store)
            await _agree(service, first.id, second.id)
