"""Transitions a store decides in one step (``transition``): the change it writes is the
one the commit pipeline decides, and when it writes nothing the service says why."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import attrs
import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import (
    AmountExceeded,
    IdempotencyConflict,
    InvalidTransition,
    Payment,
    PaymentNotFound,
    PaymentStatus,
    ValidationError,
    correlation,
    record_change,
    reserve_refund,
    transition,
    uuid7,
    with_plan,
)
from paymentorch.domain.consequences import with_consequences
from paymentorch.domain.plans import PlanTerms, new_plan
from paymentorch.domain.transitions import Stepped, Transition, transition_sources
from paymentorch.ports import PaymentStore
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _created,
    _events,
)

_CASES = [
    ("confirm", PaymentStatus.PENDING, "125.50", "USD", None),
    ("confirm", PaymentStatus.PENDING, "1000", "JPY", None),
    ("confirm", PaymentStatus.PENDING, "12.345", "BHD", None),
    ("authorize", PaymentStatus.PENDING, "9.99", "EUR", None),
    ("fail", PaymentStatus.PENDING, "10.00", "USD", None),
    ("fail", PaymentStatus.AUTHORIZED, "7", "JPY", None),
    ("cancel", PaymentStatus.PENDING, "0.01", "USD", None),
    ("cancel", PaymentStatus.AUTHORIZED, "1.000", "KWD", None),
    ("capture", PaymentStatus.AUTHORIZED, "125.50", "USD", None),
    ("capture", PaymentStatus.AUTHORIZED, "125.50", "USD", "100.2"),
    ("capture", PaymentStatus.AUTHORIZED, "125.50", "USD", "125.500"),
    ("capture", PaymentStatus.AUTHORIZED, "1000", "JPY", "999"),
    ("capture", PaymentStatus.AUTHORIZED, "12.345", "BHD", "0.001"),
    ("refund", PaymentStatus.CONFIRMED, "125.50", "USD", "125.5"),
    ("refund", PaymentStatus.CONFIRMED, "125.50", "USD", "0.01"),
    ("refund", PaymentStatus.CONFIRMED, "1000", "JPY", "999"),
    ("refund", PaymentStatus.CONFIRMED, "12.345", "BHD", "12.345"),
    ("refund", PaymentStatus.CONFIRMED, "125.50", "USD", None),
    ("refund", PaymentStatus.CONFIRMED, "1000", "JPY", None),
    ("refund", PaymentStatus.CONFIRMED, "12.345", "BHD", None),
]


def _move(payment: Payment, action: str, **options: Any) -> Transition:
    reason = "card declined" if action in {"fail", "cancel"} else None
    if action == "refund":
        options.setdefault("operation_id", uuid7())
    return Transition(
        payment.id, action, transition_sources(action), at=utc_now(), actor_id="admin-1",
        reason=reason, correlation_id="req-7", **options,
    )  # fmt: skip


async def _pair(
    store: PaymentStore, amount: str, currency: str, status: PaymentStatus
) -> tuple[Payment, Payment]:
    """Two payments alike but for their ids and keys, in ``status``: with metadata, a
    key, and a creation time without microseconds."""
    created = _created()
    at = created.payment.created_at.replace(microsecond=0)
    pair = []
    for _ in range(2):
        payment = attrs.evolve(
            created.payment, id=uuid7(), idempotency_key=f"k-{uuid7()}",
            amount=Decimal(amount), currency=currency, created_at=at, updated_at=at,
            metadata={"order": "A-1", "note": "caf\u00e9"},
        )  # fmt: skip
        await store.add(record_change(payment, "created", from_status=None, actor_id="user-1"))
        if status is not PaymentStatus.PENDING:
            name = "authorize" if status is PaymentStatus.AUTHORIZED else "confirm"
            new = transition(payment, name, at=at + timedelta(seconds=1))
            recorded = record_change(new, name, from_status=payment.status, actor_id="admin-1")
            moved = with_consequences(recorded, payment)
            assert await store.apply(moved, expected=PaymentStatus.PENDING)
            payment = new
        pair.append(payment)
    return pair[0], pair[1]


def _alike(value: Any, ours: Payment, theirs: Payment, *same: tuple[Any, Any]) -> Any:
    """``value`` (a dict, list or text) with ``theirs``'s id and key, and the second of
    each pair in ``same``, replaced by ``ours``'s (the first)."""
    if isinstance(value, dict):
        return {k: _alike(v, ours, theirs, *same) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_alike(v, ours, theirs, *same) for v in value]
    if isinstance(value, str):
        pairs = ((ours.id, theirs.id), (ours.idempotency_key, theirs.idempotency_key), *same)
        for mine, other in pairs:
            value = value.replace(str(other), str(mine))
    return value


class TestTransitions:
    """``transition``: the store decides a plain status transition on the payment as it
    finds it and writes, in one step, what the commit pipeline would have written; the
    service reads only when it wrote nothing."""

    pytestmark = pytest.mark.asyncio

    @pytest.mark.parametrize(("action", "source", "amount", "currency", "taken"), _CASES)
    async def test_store_transition_writes_what_the_pipeline_decides(
        self, backend: Backend, *, action: str, source: PaymentStatus, amount: str,
        currency: str, taken: str | None,
    ) -> None:  # fmt: skip
        """The payment, audit entry, event, exposure move and journal entry that
        ``transition`` writes are those ``apply`` writes for ``Transition.change`` (a
        capture of part of the amount too)."""
        store = await backend.open_store()
        try:
            ours, theirs = await _pair(store, amount, currency, source)
            move = _move(ours, action, amount=None if taken is None else Decimal(taken))
            expected = move.change(ours)
            before = await store.exposure(CUSTOMER, currency)
            stepped = await store.transition(move)
            moved = await store.exposure(CUSTOMER, currency) - before
            assert stepped.written == expected.payment
            assert stepped.operation == expected.operation
            other = attrs.evolve(
                move, payment_id=theirs.id, event_id=uuid7(), entry_id=uuid7(),
                operation_id=move.operation_id and uuid7(),
            )  # fmt: skip
            same = (move.operation_id, other.operation_id)
            decided = other.change(theirs)
            before = await store.exposure(CUSTOMER, currency)
            assert await store.apply(decided, expected=source)
            assert moved == await store.exposure(CUSTOMER, currency) - before
            assert (await store.audit_trail(ours.id))[-1] == expected.audit
            assert (await store.audit_trail(theirs.id))[-1:] == [
                attrs.evolve(expected.audit, payment_id=theirs.id)
            ]
            events = {e.payment_id: e for e in await _events(store) if e.id in
                      {expected.event.id, decided.event.id}}  # fmt: skip
            mine, its = events[ours.id].to_dict(), events[theirs.id].to_dict()
            assert mine == expected.event.to_dict()
            del mine["id"], its["id"]
            assert mine == _alike(its, ours, theirs, same)
            if expected.journal is not None:  # the amounts as stored, scale and all
                (*_, last) = await store.journal(ours.id)
                assert [(line.account, str(line.amount)) for line in last.lines] == [
                    (line.account, str(line.amount)) for line in expected.journal.lines
                ]
            journal = [e.to_dict() for e in await store.journal(ours.id)]
            assert journal[-1:] == (
                [] if expected.journal is None else [expected.journal.to_dict()]
            )
            others = [e.to_dict() for e in await store.journal(theirs.id)]
            for entry in (*journal, *others):
                del entry["id"]
            assert journal == _alike(others, ours, theirs, same)
            operations = await store.operations(ours.id)
            assert operations == ([] if expected.operation is None else [expected.operation])
            assert [o.to_dict() for o in operations] == _alike(
                [o.to_dict() for o in await store.operations(theirs.id)], ours, theirs, same
            )
        finally:
            await store.aclose()

    async def test_store_transition_writes_nothing_it_does_not_start_from(
        self, backend: Backend
    ) -> None:
        """A missing payment, or one in a status the transition does not start from,
        is left as it was: nothing written, no entry or event."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            payment = created.payment
            missing = await store.transition(_move(attrs.evolve(payment, id=uuid7()), "confirm"))
            assert missing == Stepped()
            only_authorized = attrs.evolve(
                _move(payment, "cancel"), sources=frozenset({PaymentStatus.AUTHORIZED})
            )
            assert (await store.transition(only_authorized)).written is None
            confirmed = (await store.transition(_move(payment, "confirm"))).written
            assert confirmed is not None
            assert confirmed.status is PaymentStatus.CONFIRMED
            for action in ("confirm", "fail", "cancel", "authorize"):
                assert (await store.transition(_move(payment, action))).written is None
            assert await store.get(payment.id) == confirmed
            assert [e.action for e in await store.audit_trail(payment.id)] == [
                "created",
                "confirmed",
            ]
            assert len(await _events(store)) == 2
        finally:
            await store.aclose()

    @pytest.mark.parametrize("taken", ["0", "-1", "125.51", "1000001", "100.001", "1E+3"])
    async def test_store_transition_writes_no_capture_beyond_its_bound(
        self, backend: Backend, taken: str
    ) -> None:
        """A capture of nothing, of more than the payment, or of an amount its currency
        cannot hold writes nothing and says what it found; then a capture within the
        bound is written."""
        store = await backend.open_store()
        try:
            payment, _ = await _pair(store, "125.50", "USD", PaymentStatus.AUTHORIZED)
            refused = await store.transition(_move(payment, "capture", amount=Decimal(taken)))
            assert refused.written is None
            assert refused.found in (None, payment)
            assert await store.get(payment.id) == payment
            assert [e.action for e in await store.audit_trail(payment.id)] == [
                "created", "authorized",
            ]  # fmt: skip
            assert await store.journal(payment.id) == []
            written = await store.transition(_move(payment, "capture", amount=Decimal("0.10")))
            assert written.written is not None
            assert str(written.written.captured_amount) == "0.10"
        finally:
            await store.aclose()

    async def test_a_capture_says_why_it_wrote_nothing(self, backend: Backend) -> None:
        """A capture beyond its bound raises what the decision raises (AmountExceeded,
        ValidationError), writing nothing; one within it captures that amount."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "50.00", actor=USER)
            await service.authorize_payment(payment.id, actor=ADMIN)
            with pytest.raises(AmountExceeded):
                await service.capture_payment(payment.id, actor=ADMIN, amount="50.01")
            for bad in ("0", "-5", "1.001", "abc", "NaN", "1E+9"):
                with pytest.raises(ValidationError):
                    await service.capture_payment(payment.id, actor=ADMIN, amount=bad)
            with pytest.raises(PaymentNotFound):
                await service.capture_payment(uuid7(), actor=ADMIN, amount="1.00")
            assert [e.action for e in await service.audit_trail(payment.id)] == [
                "created", "authorized",
            ]  # fmt: skip
            done = await service.capture_payment(payment.id, actor=ADMIN, amount="20.5")
            assert (done.status, str(done.captured_amount)) == (PaymentStatus.CONFIRMED, "20.50")
            with pytest.raises(InvalidTransition):
                await service.capture_payment(payment.id, actor=ADMIN, amount="1.00")
            (entry,) = await service.store.journal(payment.id)
            assert sorted(str(line.amount) for line in entry.lines) == ["-20.50", "20.50"]

    async def test_store_transition_says_what_it_found(self, backend: Backend) -> None:
        """When it writes nothing, what it says it found is what ``get`` and ``plan``
        read: the payment as it is and, if the store says it, its plan."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            plain = created.payment
            assert (await store.transition(_move(plain, "confirm"))).written is not None
            refused = await store.transition(_move(plain, "cancel"))
            assert refused.written is None
            assert refused.found in (None, await store.get(plain.id))
            assert refused.plan is None
            planned = attrs.evolve(_created().payment, has_plan=True)
            plan = new_plan(planned.id, planned.amount, planned.currency, PlanTerms(),
                            planned.created_at)  # fmt: skip
            change = record_change(planned, "created", from_status=None, actor_id="user-1")
            await store.add(with_plan(change, plan))
            stepped = await store.transition(_move(planned, "confirm"))
            assert stepped.written is None
            assert stepped.found in (None, await store.get(planned.id))
            assert stepped.plan in ((None, plan) if stepped.found else (None,))
            assert [e.action for e in await store.audit_trail(planned.id)] == ["created"]
        finally:
            await store.aclose()

    async def test_store_transitions_racing_for_one_payment_leave_one_winner(
        self, backend: Backend
    ) -> None:
        """Twenty transitions of one payment at once: one is written, the others write
        nothing."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            moves = [_move(created.payment, a) for a in ("confirm", "fail", "cancel") * 7][:20]
            results = await asyncio.gather(*(store.transition(m) for m in moves))
            (winner,) = [r.written for r in results if r.written is not None]
            assert await store.get(created.payment.id) == winner
            assert len(await store.audit_trail(created.payment.id)) == 2
            assert len(await _events(store)) == 2
        finally:
            await store.aclose()

    async def test_captures_racing_a_void_leave_one_winner(self, backend: Backend) -> None:
        """Captures of different amounts, cancels and fails of one Authorized payment at
        once: one is written, and a winning capture took exactly its own amount."""
        store = await backend.open_store()
        try:
            payment, _ = await _pair(store, "100.00", "USD", PaymentStatus.AUTHORIZED)
            moves = [
                _move(payment, "capture", amount=Decimal(f"{n}.25")) if n % 3 else
                _move(payment, "cancel" if n % 2 else "fail")
                for n in range(1, 21)
            ]  # fmt: skip
            results = await asyncio.gather(*(store.transition(m) for m in moves))
            won = [(m, r.written) for m, r in zip(moves, results, strict=True) if r.written]
            ((move, winner),) = won
            assert await store.get(payment.id) == winner
            taken = move.amount if move.action == "capture" else Decimal(0)
            assert winner.captured_amount == taken
            entries = await store.journal(payment.id)
            assert sum(abs(line.amount) for e in entries for line in e.lines) == 2 * taken
            assert len(await store.audit_trail(payment.id)) == 3
        finally:
            await store.aclose()

    async def test_store_refunds_racing_for_one_payment_stay_within_what_was_captured(
        self, backend: Backend
    ) -> None:
        """Sixteen refunds of 10 of a Confirmed payment of 100 at once: exactly ten are
        written, each with its operation, and the payment is Refunded."""
        store = await backend.open_store()
        try:
            payment, _ = await _pair(store, "100.00", "USD", PaymentStatus.CONFIRMED)
            moves = [_move(payment, "refund", amount=Decimal(10)) for _ in range(16)]
            results = await asyncio.gather(*(store.transition(m) for m in moves))
            assert sum(r.written is not None for r in results) == 10
            stored = await store.get(payment.id)
            assert stored is not None
            assert (stored.status, stored.refunded_amount) == (
                PaymentStatus.REFUNDED, Decimal("100.00"),
            )  # fmt: skip
            assert len(await store.operations(payment.id)) == 10
        finally:
            await store.aclose()

    @pytest.mark.parametrize(
        ("action", "source", "taken"),
        [
            ("confirm", PaymentStatus.PENDING, None),
            ("fail", PaymentStatus.PENDING, None),
            ("cancel", PaymentStatus.AUTHORIZED, None),
            ("capture", PaymentStatus.AUTHORIZED, None),
            ("capture", PaymentStatus.AUTHORIZED, "100.2"),
        ],
    )
    async def test_a_keyed_transition_claims_its_key_with_the_payment_after_it(
        self, backend: Backend, *, action: str, source: PaymentStatus, taken: str | None
    ) -> None:
        """A transition with a key writes the key with what was asked and the payment as
        it leaves it, as ``apply`` writes them for ``Transition.change``; the same key
        again, on another payment the transition applies to, raises IdempotencyConflict
        and writes nothing."""
        store = await backend.open_store()
        try:
            ours, theirs = await _pair(store, "125.50", "USD", source)
            amount = None if taken is None else Decimal(taken)
            move = _move(ours, action, amount=amount, key="k-ours")
            if action == "fail":  # a reason JSON must escape
                move = attrs.evolve(move, reason='d\u00e9clin\u00e9 "\\ \U0001f4b3"')
            stepped = await store.transition(move)
            assert stepped.written == move.change(ours).payment
            other = attrs.evolve(
                move, payment_id=theirs.id, event_id=uuid7(), entry_id=uuid7(), key="k-theirs"
            )
            assert await store.apply(other.change(theirs), expected=source)
            mine = await store.find_request("admin-1", "k-ours")
            its = await store.find_request("admin-1", "k-theirs")
            assert mine is not None
            assert its is not None
            assert mine.request == attrs.evolve(its.request, key="k-ours")
            assert mine.payment == stepped.written
            assert its.payment == attrs.evolve(
                stepped.written, id=theirs.id, idempotency_key=theirs.idempotency_key
            )
            third, _ = await _pair(store, "125.50", "USD", source)
            trail = await store.audit_trail(third.id)
            with pytest.raises(IdempotencyConflict):
                await store.transition(_move(third, action, amount=amount, key="k-ours"))
            assert await store.get(third.id) == third
            assert await store.audit_trail(third.id) == trail
        finally:
            await store.aclose()

    async def test_a_refund_of_what_is_left_gives_back_what_the_payment_allows(
        self, backend: Backend
    ) -> None:
        """A refund without an amount gives back what is left (captured, less refunded
        and reserved) and says so in its operation; the payment is Refunded only when
        nothing is reserved; with nothing left it writes nothing. Eight at once on a
        fresh payment: exactly one gives back everything."""
        store = await backend.open_store()
        try:
            payment, racing = await _pair(store, "100.00", "USD", PaymentStatus.CONFIRMED)
            part = await store.transition(_move(payment, "refund", amount=Decimal("30.00")))
            assert part.written is not None
            at = part.written.updated_at
            held = reserve_refund(part.written, Decimal("20.00"), at=at)
            queued = record_change(
                held, "refund_queued", from_status=PaymentStatus.CONFIRMED, actor_id="admin-1"
            )
            assert await store.apply(queued, expected=PaymentStatus.CONFIRMED)
            rest = await store.transition(_move(payment, "refund"))
            assert rest.written is not None
            assert rest.operation is not None
            assert str(rest.operation.amount) == "50.00"
            assert rest.written.status is PaymentStatus.CONFIRMED  # 20.00 still reserved
            assert (rest.written.refunded_amount, rest.written.refundable) == (
                Decimal(80),
                Decimal(0),
            )
            assert await store.operations(payment.id) == [part.operation, rest.operation]
            nothing = await store.transition(_move(payment, "refund"))
            assert (nothing.written, nothing.operation) == (None, None)
            assert nothing.found in (None, rest.written)
            moves = [_move(racing, "refund") for _ in range(8)]
            results = await asyncio.gather(*(store.transition(m) for m in moves))
            (won,) = [r for r in results if r.written is not None]
            assert won.operation is not None
            assert won.operation.amount == Decimal("100.00")
            stored = await store.get(racing.id)
            assert stored is not None
            assert stored.status is PaymentStatus.REFUNDED
            assert await store.operations(racing.id) == [won.operation]
            lines = [line.amount for e in await store.journal(racing.id) for line in e.lines]
            assert sum(abs(amount) for amount in lines) == 2 * (100 + 100)  # capture, refund
        finally:
            await store.aclose()

    async def test_a_transition_says_why_it_wrote_nothing(self, backend: Backend) -> None:
        """A missing payment raises PaymentNotFound, one in another status
        InvalidTransition, with no entry or event written, cache or not."""
        for cache in (None, "default"):
            options: dict[str, Any] = {} if cache else {"cache": None}
            async with service_on(backend, **options) as service:
                with pytest.raises(PaymentNotFound):
                    await service.confirm_payment(uuid7(), actor=ADMIN)
                payment = await service.create_payment(CUSTOMER, "5.00", actor=USER)
                await service.cancel_payment(payment.id, actor=ADMIN)
                for asked in (
                    partial(service.confirm_payment, payment.id, actor=ADMIN),
                    partial(service.fail_payment, payment.id, reason="late", actor=ADMIN),
                    partial(service.authorize_payment, payment.id, actor=ADMIN),
                ):
                    with pytest.raises(InvalidTransition):
                        await asked()
                trail = await service.audit_trail(payment.id)
                assert [e.action for e in trail] == ["created", "cancelled"]

    async def test_keyed_and_plain_transitions_of_one_payment(self, backend: Backend) -> None:
        """A keyed confirm repeats as it first left the payment after a plain cancel lost
        to it; a plain confirm after a keyed one is refused; the audit entry of a plain
        transition carries its caller and correlation id."""
        async with service_on(backend, cache=None) as service:
            payment = await service.create_payment(CUSTOMER, "5.00", actor=USER)
            keyed = await service.confirm_payment(payment.id, actor=ADMIN, idempotency_key="c1")
            with pytest.raises(InvalidTransition):
                await service.cancel_payment(payment.id, actor=ADMIN)
            with pytest.raises(InvalidTransition):
                await service.confirm_payment(payment.id, actor=ADMIN)
            again = await service.confirm_payment(payment.id, actor=ADMIN, idempotency_key="c1")
            assert again == keyed
            other = await service.create_payment(CUSTOMER, "6.00", actor=USER)
            with correlation("req-42"):
                done = await service.fail_payment(other.id, reason="no funds", actor=ADMIN)
            assert (done.status, done.version, done.failure_reason) == (
                PaymentStatus.FAILED, 2, "no funds",
            )  # fmt: skip
            (*_, entry) = await service.audit_trail(other.id)
            assert (entry.actor_id, entry.correlation_id, entry.reason) == (
                ADMIN.id, "req-42", "no funds",
            )  # fmt: skip
            kinds = Counter(e.type for e in await _events(service.store))
            assert kinds == Counter(
                {"payment.created": 2, "payment.confirmed": 1, "payment.failed": 1}
            )
