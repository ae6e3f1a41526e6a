"""Changing payments: the state machine, captures and refunds, keyed transitions, the
audit trail, and ``apply``/``apply_many`` with their guards, called directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import attrs
import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import (
    Actor,
    AmountExceeded,
    IdempotencyConflict,
    InvalidTransition,
    OperationStatus,
    Payment,
    PaymentStatus,
    Role,
    StoreError,
    ValidationError,
    correlation,
    record_change,
    transition,
    uuid7,
)
from paymentorch.domain.requests import request_key
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _changed,
    _created,
    _events,
    _peek,
    _refunded,
)


class TestChanges:
    """Changes and their guards: ``apply`` writes a change only from the ``expected``
    status, with the room for a refund and its transition key, atomically with its
    audit entry and event."""

    pytestmark = pytest.mark.asyncio

    async def test_create_then_confirm(self, backend: Backend) -> None:
        """A new payment is Pending at version 1; confirming makes it Confirmed at version 2."""
        async with service_on(backend) as service:
            created = await service.create_payment(CUSTOMER, Decimal("125.50"), actor=USER)
            assert (created.status, created.version, created.amount) == (
                PaymentStatus.PENDING,
                1,
                Decimal("125.50"),
            )
            confirmed = await service.confirm_payment(created.id, actor=ADMIN)
            assert (confirmed.status, confirmed.version) == (PaymentStatus.CONFIRMED, 2)
            stored = await service.store.get(created.id)
            assert stored == confirmed

    @pytest.mark.parametrize("first", ["confirm", "fail", "cancel"])
    @pytest.mark.parametrize("second", ["confirm", "fail", "cancel"])
    async def test_no_transition_leaves_a_final_state(
        self, backend: Backend, first: str, second: str
    ) -> None:
        """Confirmed, Failed and Cancelled are final: every further action is refused."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, Decimal("5.00"), actor=USER)
            actions = {
                "confirm": lambda: service.confirm_payment(payment.id, actor=ADMIN),
                "fail": lambda: service.fail_payment(payment.id, reason="declined", actor=ADMIN),
                "cancel": lambda: service.cancel_payment(payment.id, actor=ADMIN),
            }
            done = await actions[first]()
            with pytest.raises(InvalidTransition) as caught:
                await actions[second]()
            assert (caught.value.status, caught.value.action) == (done.status, second)
            assert await service.store.get(payment.id) == done
            assert len(await service.audit_trail(payment.id)) == 2

    async def test_fail_keeps_the_reason(self, backend: Backend) -> None:
        """A failed payment keeps its reason; the audit entry records it too."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, Decimal("5.00"), actor=USER)
            failed = await service.fail_payment(
                payment.id, reason="processor declined", actor=ADMIN
            )
            assert failed.failure_reason == "processor declined"
            assert (await service.store.get(payment.id)) == failed
            trail = await service.audit_trail(payment.id)
            assert [(e.action, e.reason) for e in trail] == [
                ("created", None),
                ("failed", "processor declined"),
            ]

    async def test_authorize_capture_and_refund(self, backend: Backend) -> None:
        """Authorize, capture part, refund in two parts: exact amounts, entries, events,
        operations."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, "100.00", actor=USER)
            authorized = await service.authorize_payment(payment.id, actor=ADMIN)
            assert authorized.status is PaymentStatus.AUTHORIZED
            assert authorized.captured_amount == Decimal(0)
            captured = await service.capture_payment(payment.id, actor=ADMIN, amount="80.00")
            assert (captured.status, captured.amount, captured.captured_amount) == (
                PaymentStatus.CONFIRMED,
                Decimal("100.00"),
                Decimal("80.00"),
            )
            first = await service.refund_payment(payment.id, "30.00", actor=ADMIN, reason="late")
            rest = await service.refund_payment(payment.id, actor=ADMIN)
            assert (first.amount, rest.amount) == (Decimal("30.00"), Decimal("50.00"))
            assert {first.status, rest.status} == {OperationStatus.SUCCEEDED}
            final = await service.store.get(payment.id)
            assert final is not None
            assert (final.status, final.refunded_amount) == (
                PaymentStatus.REFUNDED,
                Decimal("80.00"),
            )
            assert final.to_dict()["refunded_amount"] == "80.00"
            assert [o.id for o in await service.operations(payment.id)] == [first.id, rest.id]
            trail = await service.audit_trail(payment.id)
            assert [e.action for e in trail] == [
                "created",
                "authorized",
                "captured",
                "refunded",
                "refunded",
            ]
            events = await _events(service.store)
            assert [e.type for e in events] == [
                "payment.created",
                "payment.authorized",
                "payment.confirmed",
                "payment.refunded",
                "payment.refunded",
            ]
            assert events[3].operation is not None
            assert (events[3].operation["amount"], events[3].operation["reason"]) == (
                "30.00",
                "late",
            )
            assert events[4].payment["status"] == "Refunded"
            with pytest.raises(InvalidTransition):
                await service.refund_payment(payment.id, "1.00", actor=ADMIN)

    @pytest.mark.parametrize(
        ("amount", "currency", "refund", "left", "finer"),
        [
            ("1000", "JPY", "1", "999", "0.5"),
            ("10.00", "USD", "0.01", "9.99", "0.005"),
            ("1.234", "KWD", "0.001", "1.233", "0.0005"),
        ],
    )
    async def test_refunds_are_exact_in_every_exponent(  # noqa: PLR0917 - one parametrized case
        self, backend: Backend, amount: str, currency: str, refund: str, left: str, finer: str
    ) -> None:
        """Refunds keep the currency's scale; a refund finer than the currency allows is refused."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, amount, actor=USER, currency=currency)
            await service.confirm_payment(payment.id, actor=ADMIN)
            await service.refund_payment(payment.id, refund, actor=ADMIN)
            stored = await service.store.get(payment.id)
            assert stored is not None
            assert str(stored.captured_amount - stored.refunded_amount) == left
            with pytest.raises(ValidationError):
                await service.refund_payment(payment.id, finer, actor=ADMIN)
            with pytest.raises(ValidationError):
                await service.refund_payment(payment.id, 0.5, actor=ADMIN)  # type: ignore[arg-type]

    async def test_a_keyed_transition_repeats_as_it_first_left_the_payment(
        self, backend: Backend
    ) -> None:
        """Each transition with a key: a repeat returns the payment as the first call left it,
        even after it moved on, and writes no entry or event."""
        async with service_on(backend) as service:
            steps: dict[str, Callable[[Any, str], Awaitable[Payment]]] = {
                "confirm": lambda p, k: service.confirm_payment(p, actor=ADMIN, idempotency_key=k),
                "authorize": lambda p, k: service.authorize_payment(
                    p, actor=ADMIN, idempotency_key=k
                ),
                "fail": lambda p, k: service.fail_payment(
                    p, reason="declined", actor=ADMIN, idempotency_key=k
                ),
                "cancel": lambda p, k: service.cancel_payment(
                    p, reason="changed mind", actor=ADMIN, idempotency_key=k
                ),
            }
            for action, step in steps.items():
                payment = await service.create_payment(CUSTOMER, "40.00", actor=USER)
                first = await step(payment.id, f"{action}-1")
                assert await step(payment.id, f"{action}-1") == first
                assert len(await service.audit_trail(payment.id)) == 2
            payment = await service.create_payment(CUSTOMER, "40.00", actor=USER)
            authorized = await service.authorize_payment(payment.id, actor=ADMIN)
            captured = await service.capture_payment(
                authorized.id, actor=ADMIN, amount="15.00", idempotency_key="capture-1"
            )
            await service.refund_payment(captured.id, "5.00", actor=ADMIN)  # it moves on
            for asked in ("15.00", "15", None):
                again = await service.capture_payment(
                    captured.id, actor=ADMIN, amount=asked, idempotency_key="capture-1"
                )
                assert again == captured
                assert again.captured_amount == Decimal("15.00")
                assert again.refunded_amount == 0
            assert [e.action for e in await service.audit_trail(captured.id)] == [
                "created", "authorized", "captured", "refunded",
            ]  # fmt: skip
            assert len(await _events(service.store)) == 2 * 4 + 4

    async def test_a_transition_key_asks_for_one_thing(self, backend: Backend) -> None:
        """The same key on another payment, for another action or with other parameters raises
        IdempotencyConflict and changes nothing; another caller's same key is its own."""
        other = Actor("admin-2", roles={Role.ADMIN})
        async with service_on(backend) as service:
            one = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            two = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            await service.authorize_payment(one.id, actor=ADMIN, idempotency_key="k")
            attempts = [  # each asked only when its turn comes: none left unawaited
                partial(service.authorize_payment, two.id, actor=ADMIN, idempotency_key="k"),
                partial(service.capture_payment, one.id, actor=ADMIN, idempotency_key="k"),
                partial(service.cancel_payment, two.id, actor=ADMIN, idempotency_key="k"),
            ]
            for attempt in attempts:
                with pytest.raises(IdempotencyConflict) as caught:
                    await attempt()
                assert caught.value.key == "k"
            await service.fail_payment(two.id, reason="declined", actor=ADMIN, idempotency_key="f")
            with pytest.raises(IdempotencyConflict, match="reason"):
                await service.fail_payment(two.id, reason="other", actor=ADMIN, idempotency_key="f")
            assert (await service.get_payment(one.id)).status is PaymentStatus.AUTHORIZED
            assert len(await service.audit_trail(one.id)) == 2
            three = await service.create_payment(CUSTOMER, "10.00", actor=USER)
            theirs = await service.confirm_payment(three.id, actor=other, idempotency_key="k")
            assert theirs.status is PaymentStatus.CONFIRMED
            with pytest.raises(ValidationError) as invalid:
                await service.confirm_payment(three.id, actor=ADMIN, idempotency_key="")
            assert [e.field for e in invalid.value.errors] == ["idempotency_key"]

    async def test_over_capture_is_refused(self, backend: Backend) -> None:
        """A capture of more than the authorization raises AmountExceeded and changes nothing."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, "20.00", actor=USER)
            await service.authorize_payment(payment.id, actor=ADMIN)
            with pytest.raises(AmountExceeded) as caught:
                await service.capture_payment(payment.id, actor=ADMIN, amount="20.01")
            assert caught.value.available == Decimal("20.00")
            stored = await service.store.get(payment.id)
            assert stored is not None
            assert stored.status is PaymentStatus.AUTHORIZED

    async def test_store_refuses_a_refund_with_no_room(self, backend: Backend) -> None:
        """apply writes a refund only if the stored amounts leave room: else False, nothing
        written."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            confirm = _changed(created.payment, "confirm")
            await store.apply(confirm, expected=PaymentStatus.PENDING)
            # Built as if 0.60 were refundable from a copy that claims more was captured.
            inflated = attrs.evolve(confirm.payment, captured_amount=Decimal("5.00"))
            too_much = _refunded(inflated, "2.00")
            assert await store.apply(too_much, expected=PaymentStatus.CONFIRMED) is False
            assert await store.get(created.payment.id) == confirm.payment
            assert await store.operations(created.payment.id) == []
            fits = _refunded(confirm.payment, "0.40")
            assert await store.apply(fits, expected=PaymentStatus.CONFIRMED) is True
            assert fits.operation is not None
            assert await store.operations(created.payment.id) == [fits.operation]
            stale = _refunded(confirm.payment, "0.10")  # built on the version before the refund
            assert await store.apply(stale, expected=PaymentStatus.CONFIRMED) is False
            assert len(await store.audit_trail(created.payment.id)) == 3
        finally:
            await store.aclose()

    async def test_a_failed_event_write_undoes_the_transition(self, backend: Backend) -> None:
        """If the outbox write fails, the status change and its audit entry are undone."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            (event,) = await _peek(service.store)
            new = transition(payment, "confirm", at=utc_now())
            change = record_change(new, "confirm", from_status=payment.status, actor_id="x")
            change = attrs.evolve(change, event=attrs.evolve(change.event, id=event.id))
            with pytest.raises(StoreError):
                await service.store.apply(change, expected=PaymentStatus.PENDING)
            assert (await service.store.get(payment.id)) == payment
            assert len(await service.store.audit_trail(payment.id)) == 1
            assert len(await _events(service.store)) == 1

    async def test_bulk_confirm(self, backend: Backend) -> None:
        """confirm_payments confirms the Pending ones and says why it skipped the others."""
        async with service_on(backend) as service:
            a, b, c = [await service.create_payment(CUSTOMER, "1.00", actor=USER) for _ in range(3)]
            await service.cancel_payment(b.id, actor=ADMIN)
            missing = uuid7()
            result = await service.confirm_payments([a.id, b.id, c.id, missing], actor=ADMIN)
            assert [p.id for p in result.confirmed] == [a.id, c.id]
            assert result.skipped == {b.id: "is Cancelled", missing: "not found"}
            assert (await service.get_payment(c.id)).status is PaymentStatus.CONFIRMED
            assert [e.action for e in await service.audit_trail(a.id)] == ["created", "confirmed"]

    async def test_audit_trail_records_who_why_and_correlation(self, backend: Backend) -> None:
        """Each change leaves one entry, oldest first, with actor, reason and correlation id."""
        async with service_on(backend) as service:
            with correlation("req-1"):
                payment = await service.create_payment(CUSTOMER, "3.00", actor=USER)
            with correlation("req-2"):
                await service.cancel_payment(payment.id, actor=ADMIN, reason="customer asked")
            trail = await service.audit_trail(payment.id)
            assert [
                (e.action, e.from_status, e.to_status, e.actor_id, e.reason, e.correlation_id)
                for e in trail
            ] == [
                ("created", None, PaymentStatus.PENDING, "user-1", None, "req-1"),
                (
                    "cancelled",
                    PaymentStatus.PENDING,
                    PaymentStatus.CANCELLED,
                    "admin-1",
                    "customer asked",
                    "req-2",
                ),
            ]
            events = await _events(service.store)
            assert [(e.type, e.correlation_id, e.payment["status"]) for e in events] == [
                ("payment.created", "req-1", "Pending"),
                ("payment.cancelled", "req-2", "Cancelled"),
            ]

    async def test_audit_entries_are_never_changed(self, backend: Backend) -> None:
        """Later changes add entries; earlier ones stay exactly as written."""
        async with service_on(backend) as service:
            payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            before = await service.audit_trail(payment.id)
            await service.fail_payment(payment.id, reason="declined", actor=ADMIN)
            await service.purge_idempotency_keys()
            after = await service.audit_trail(payment.id)
            assert after[: len(before)] == before
            assert len(after) == len(before) + 1

    async def test_store_apply_with_a_stale_status_writes_nothing(self, backend: Backend) -> None:
        """apply with an ``expected`` status the payment no longer has returns False, writes
        nothing."""
        store = await backend.open_store()
        try:
            created = _created()
            await store.add(created)
            confirm = _changed(created.payment, "confirm")
            assert await store.apply(confirm, expected=PaymentStatus.CONFIRMED) is False
            assert await store.get(created.payment.id) == created.payment
            assert await store.audit_trail(created.payment.id) == [created.audit]
            assert await store.apply(confirm, expected=PaymentStatus.PENDING) is True
            cancel = _changed(created.payment, "cancel")
            assert await store.apply(cancel, expected=PaymentStatus.PENDING) is False
            assert await store.get(created.payment.id) == confirm.payment
            assert await store.audit_trail(created.payment.id) == [created.audit, confirm.audit]
            assert [e.id for e in await _events(store)] == [created.event.id, confirm.event.id]
        finally:
            await store.aclose()

    async def test_store_apply_many_changes_only_the_expected(self, backend: Backend) -> None:
        """apply_many writes the changes whose payment has the expected status, and only those."""
        store = await backend.open_store()
        try:
            a, b, c = _created(), _created(), _created()
            for change in (a, b, c):
                await store.add(change)
            cancel = _changed(b.payment, "cancel")
            assert await store.apply(cancel, expected=PaymentStatus.PENDING)
            confirms = [_changed(x.payment, "confirm") for x in (a, b, c)]
            applied = await store.apply_many(confirms, expected=PaymentStatus.PENDING)
            assert applied == {a.payment.id, c.payment.id}
            assert await store.get(b.payment.id) == cancel.payment
            assert await store.audit_trail(b.payment.id) == [b.audit, cancel.audit]
            assert await store.get(c.payment.id) == confirms[2].payment
            events = {e.id for e in await _events(store)}
            assert events == {x.event.id for x in (a, b, c, cancel, confirms[0], confirms[2])}
        finally:
            await store.aclose()

    async def test_store_apply_many_refuses_what_it_does_not_write(self, backend: Backend) -> None:
        """apply_many is for plain transitions: a refund (an operation and its room) or a
        transition's key among the changes is a ValueError, and nothing is written."""
        store = await backend.open_store()
        try:
            a, b = _created(), _created()
            for change in (a, b):
                await store.add(change)
            confirmed = _changed(a.payment, "confirm")
            assert await store.apply(confirmed, expected=PaymentStatus.PENDING)
            keyed = attrs.evolve(_changed(b.payment, "confirm"), request=request_key("k", "x"))
            for odd in (_refunded(confirmed.payment, "0.50"), keyed):
                with pytest.raises(ValueError, match="apply_many"):
                    await store.apply_many([_changed(b.payment, "cancel"), odd],
                                           expected=PaymentStatus.PENDING)  # fmt: skip
            assert await store.get(a.payment.id) == confirmed.payment
            assert await store.get(b.payment.id) == b.payment
        finally:
            await store.aclose()

    async def test_store_claims_a_transition_key_with_its_change(self, backend: Backend) -> None:
        """apply with a key its actor holds raises IdempotencyConflict and writes nothing;
        find_request returns the payment as the first change left it; purging forgets it."""
        store = await backend.open_store()
        try:
            a, b = _created(), _created()
            for change in (a, b):
                await store.add(change)
            confirm = attrs.evolve(
                _changed(a.payment, "confirm"), request=request_key("k", "confirm")
            )
            assert await store.apply(confirm, expected=PaymentStatus.PENDING) is True
            again = attrs.evolve(
                _changed(b.payment, "confirm"), request=request_key("k", "confirm")
            )
            with pytest.raises(IdempotencyConflict):
                await store.apply(again, expected=PaymentStatus.PENDING)
            assert await store.get(b.payment.id) == b.payment
            assert await store.audit_trail(b.payment.id) == [b.audit]
            held = await store.find_request("admin-1", "k")
            assert held is not None
            assert (held.request, held.payment) == (confirm.request, confirm.payment)
            assert await store.find_request("admin-2", "k") is None
            refused = attrs.evolve(
                _changed(a.payment, "cancel"), request=request_key("c", "cancel")
            )
            assert await store.apply(refused, expected=PaymentStatus.PENDING) is False
            assert await store.find_request("admin-1", "c") is None  # no change, no claim
            assert [e.id for e in await _events(store)] == [
                a.event.id,
                b.event.id,
                confirm.event.id,
            ]
            assert await store.purge_idempotency_keys(utc_now() + timedelta(seconds=1)) == 1
            assert await store.find_request("admin-1", "k") is None
        finally:
            await store.aclose()
