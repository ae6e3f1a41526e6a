"""Creating payments: validation, idempotency keys scoped by caller, batches all or
nothing, and ``add``/``add_many`` called directly.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from paymentorch.domain import (
    Actor,
    IdempotencyConflict,
    NewPayment,
    Role,
    StoreError,
    ValidationError,
    uuid7,
)
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing.contract._helpers import (
    ADMIN,
    CUSTOMER,
    USER,
    _created,
    _creation_reusing_event,
    _events,
    _peek,
)


class TestCreation:
    """Creation and its keys: what ``add`` and ``add_many`` write, all or nothing, and a
    held idempotency key returning its holder."""

    pytestmark = pytest.mark.asyncio

    async def test_invalid_input_stores_nothing(self, backend: Backend) -> None:
        """One ValidationError lists every problem, and nothing reaches the store."""
        async with service_on(backend) as service:
            with pytest.raises(ValidationError) as caught:
                await service.create_payment(
                    "nope",
                    "10.005",
                    actor=USER,
                    currency="usd",
                    metadata={"k": 1},  # type: ignore[dict-item]
                )
            assert {e.field for e in caught.value.errors} == {"customer_id", "amount", "metadata.k"}
            assert await service.count_payments() == 0
            assert await _events(service.store) == []

    async def test_idempotent_repeat_returns_the_same_payment(self, backend: Backend) -> None:
        """A repeat with the same key and parameters returns the stored payment, writing nothing."""
        async with service_on(backend) as service:
            first = await service.create_payment(
                CUSTOMER, "10.50", actor=USER, idempotency_key="order-1", metadata={"a": "b"}
            )
            again = await service.create_payment(
                CUSTOMER,
                Decimal("10.5"),
                actor=USER,
                idempotency_key="order-1",
                metadata={"a": "b"},
            )
            assert again == first
            assert len(await service.audit_trail(first.id)) == 1
            assert len(await _events(service.store)) == 1

    async def test_idempotency_conflict(self, backend: Backend) -> None:
        """The same key with other parameters raises IdempotencyConflict and changes nothing."""
        async with service_on(backend) as service:
            await service.create_payment(CUSTOMER, "10.00", actor=USER, idempotency_key="k")
            with pytest.raises(IdempotencyConflict) as caught:
                await service.create_payment(CUSTOMER, "11.00", actor=USER, idempotency_key="k")
            assert caught.value.key == "k"
            assert await service.count_payments() == 1

    async def test_concurrent_creates_with_one_key(self, backend: Backend) -> None:
        """50 concurrent creates with one key make exactly one payment, entry and event."""
        async with service_on(backend) as service:
            results = await asyncio.gather(
                *(
                    service.create_payment(CUSTOMER, "20.00", actor=USER, idempotency_key="same")
                    for _ in range(50)
                )
            )
            assert len({p.id for p in results}) == 1
            assert await service.count_payments() == 1
            assert len(await service.audit_trail(results[0].id)) == 1
            assert len(await _events(service.store)) == 1

    async def test_keys_are_scoped_by_caller(self, backend: Backend) -> None:
        """Callers racing with one key get one payment each; none receives another's."""
        other = Actor("user-2", roles={Role.USER})
        async with service_on(backend) as service:
            callers = [USER if i % 2 else other for i in range(40)]
            results = await asyncio.gather(
                *(
                    service.create_payment(CUSTOMER, "20.00", actor=a, idempotency_key="shared")
                    for a in callers
                )
            )
            mine = {p.id for p, a in zip(results, callers, strict=True) if a is USER}
            theirs = {p.id for p, a in zip(results, callers, strict=True) if a is other}
            assert len(mine) == len(theirs) == 1
            assert mine != theirs
            # Other parameters under another caller's key are that caller's own new payment.
            third = await service.create_payment(
                CUSTOMER,
                "99.00",
                actor=Actor("user-3", roles={Role.USER}),
                idempotency_key="shared",
            )
            assert third.id not in mine | theirs
            # A batch scopes its items' keys by its own actor.
            (batched,) = await service.create_payments(
                [NewPayment(CUSTOMER, "5.00", idempotency_key="shared")], actor=ADMIN
            )
            assert await service.count_payments() == 4
            assert len({batched.id, third.id, *mine, *theirs}) == 4
            assert len(await _events(service.store)) == 4

    async def test_a_failed_event_write_undoes_the_creation(self, backend: Backend) -> None:
        """If the outbox write fails, neither the payment nor its audit entry is visible."""
        async with service_on(backend) as service:
            first = await service.create_payment(CUSTOMER, "1.00", actor=USER)
            (event,) = [e for e in await _peek(service.store) if e.payment_id == first.id]
            change = _creation_reusing_event(first, event.id)
            with pytest.raises(StoreError):
                await service.store.add(change)
            assert await service.store.get(change.payment.id) is None
            assert await service.store.audit_trail(change.payment.id) == []
            assert await service.count_payments() == 1

    async def test_bulk_create_is_all_or_nothing(self, backend: Backend) -> None:
        """A batch with a key that is already held creates nothing at all."""
        async with service_on(backend) as service:
            await service.create_payment(CUSTOMER, "1.00", actor=ADMIN, idempotency_key="held")
            batch = [
                NewPayment(CUSTOMER, "2.00"),
                NewPayment(CUSTOMER, "3.00", idempotency_key="held"),
            ]
            with pytest.raises(IdempotencyConflict):
                await service.create_payments(batch, actor=ADMIN)
            assert await service.count_payments() == 1
            created = await service.create_payments(
                [NewPayment(CUSTOMER, "2.00", idempotency_key="a"), NewPayment("WXYZ-00001", "3")],
                actor=ADMIN,
            )
            assert [str(p.amount) for p in created] == ["2.00", "3.00"]
            assert await service.count_payments() == 3
            for payment in created:
                assert await service.store.get(payment.id) == payment
                assert [e.action for e in await service.audit_trail(payment.id)] == ["created"]
            assert len(await _events(service.store)) == 3

    async def test_store_add_then_read(self, backend: Backend) -> None:
        """add writes the payment, its entry and its event; get and get_many read it back."""
        store = await backend.open_store()
        try:
            a, b = _created(), _created()
            assert await store.add(a) is None
            assert await store.add(b) is None
            missing = uuid7()
            assert await store.get(a.payment.id) == a.payment
            assert await store.get(missing) is None
            found = await store.get_many([b.payment.id, missing, a.payment.id])
            assert found == {a.payment.id: a.payment, b.payment.id: b.payment}
            assert await store.get_many([]) == {}
            assert await store.audit_trail(a.payment.id) == [a.audit]
            assert [e.id for e in await _events(store)] == [a.event.id, b.event.id]
        finally:
            await store.aclose()

    async def test_store_add_with_a_held_key_inserts_nothing(self, backend: Backend) -> None:
        """add with a key its caller holds returns the holder and writes no payment, entry or
        event."""
        store = await backend.open_store()
        try:
            first = _created(key="k")
            assert await store.add(first) is None
            again = _created(key="k")
            assert await store.add(again) == first.payment
            assert await store.get(again.payment.id) is None
            assert await store.audit_trail(again.payment.id) == []
            other = _created(key="k", actor_id="user-2")  # the same key, another caller's
            assert await store.add(other) is None
            assert [e.id for e in await _events(store)] == [first.event.id, other.event.id]
        finally:
            await store.aclose()

    async def test_store_add_many_with_a_held_key_inserts_nothing(self, backend: Backend) -> None:
        """add_many with one held key raises IdempotencyConflict and writes none of the batch."""
        store = await backend.open_store()
        try:
            held = _created(key="k")
            await store.add(held)
            batch = [_created(), _created(key="k")]
            with pytest.raises(IdempotencyConflict) as caught:
                await store.add_many(batch)
            assert caught.value.key == "k"
            assert await store.get(batch[0].payment.id) is None
            assert await store.audit_trail(batch[0].payment.id) == []
            others = [_created(key="k", actor_id="user-2"), _created()]
            await store.add_many(others)
            assert [await store.get(c.payment.id) for c in others] == [c.payment for c in others]
            assert [e.id for e in await _events(store)] == [c.event.id for c in (held, *others)]
        finally:
            await store.aclose()
