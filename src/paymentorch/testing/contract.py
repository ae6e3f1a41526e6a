"""The store contract: every backend must pass these, the in-memory one included.

Import them into a test module (``from paymentorch.testing.contract import *``) and
provide a ``backend`` fixture returning a ``paymentorch.testing.Backend``. Each test is
marked for pytest-asyncio, so the suite runs in its default strict mode. Tests of the
store itself (``test_store_*``) call the port directly, as a service never would, so
that a store which ignores a guard fails here rather than in production.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from paymentorch.clock import utc_now
from paymentorch.domain import (
    Actor,
    AmountExceeded,
    Change,
    CreditLimitExceeded,
    IdempotencyConflict,
    InvalidTransition,
    NewPayment,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentNotFound,
    PaymentStatus,
    PermissionDenied,
    Role,
    StoreError,
    StoreUnavailable,
    ValidationError,
    correlation,
    plans,
    record_change,
    refund,
    transition,
    uuid7,
)
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.plans import LateFeePolicy, PlanStatus, PlanTerms
from paymentorch.domain.processing import Outcome, ProcessorRequest, ProcessorResult
from paymentorch.domain.requests import request_key
from paymentorch.outbox import OutboxRelay
from paymentorch.ports import PaymentStore
from paymentorch.processors import Router
from paymentorch.testing import _chaos as chaos
from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._workers import (
    commit_then_die,
    credit_race,
    race,
    read_log,
    refund_race,
    relay_then_die,
    relay_until_empty,
)
from paymentorch.testing.simulated import SimulatedProcessor
from paymentorch.worker import PaymentWorker

USER = Actor("user-1", roles={Role.USER})
ADMIN = Actor("admin-1", roles={Role.ADMIN})
CUSTOMER = "ABCD-12345"


async def _events(store: PaymentStore) -> list[Any]:
    """Every pending event, in outbox order, delivered and removed on the way."""
    now = utc_now()
    events: list[PaymentEvent] = []
    while True:
        batch = await store.claim_events(1000, now=now, lease_until=now + timedelta(minutes=1))
        if not batch:
            return events
        events += [m.event for m in batch]
        await store.mark_delivered([m.event.id for m in batch])


# -- the state machine ---------------------------------------------------------


async def test_create_then_confirm(backend: Backend) -> None:
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
    backend: Backend, first: str, second: str
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


async def test_fail_keeps_the_reason(backend: Backend) -> None:
    """A failed payment keeps its reason; the audit entry records it too."""
    async with service_on(backend) as service:
        payment = await service.create_payment(CUSTOMER, Decimal("5.00"), actor=USER)
        failed = await service.fail_payment(payment.id, reason="processor declined", actor=ADMIN)
        assert failed.failure_reason == "processor declined"
        assert (await service.store.get(payment.id)) == failed
        trail = await service.audit_trail(payment.id)
        assert [(e.action, e.reason) for e in trail] == [
            ("created", None),
            ("failed", "processor declined"),
        ]


async def test_unknown_payment(backend: Backend) -> None:
    """Reading or changing a payment that does not exist raises PaymentNotFound."""
    async with service_on(backend) as service:
        missing = uuid7()
        for call in (
            service.get_payment(missing),
            service.confirm_payment(missing, actor=ADMIN),
            service.audit_trail(missing),
        ):
            with pytest.raises(PaymentNotFound) as caught:
                await call
            assert caught.value.payment_id == missing


# -- validation ----------------------------------------------------------------


async def test_invalid_input_stores_nothing(backend: Backend) -> None:
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


# -- idempotency ---------------------------------------------------------------


async def test_idempotent_repeat_returns_the_same_payment(backend: Backend) -> None:
    """A repeat with the same key and parameters returns the stored payment, writing nothing."""
    async with service_on(backend) as service:
        first = await service.create_payment(
            CUSTOMER, "10.50", actor=USER, idempotency_key="order-1", metadata={"a": "b"}
        )
        again = await service.create_payment(
            CUSTOMER, Decimal("10.5"), actor=USER, idempotency_key="order-1", metadata={"a": "b"}
        )
        assert again == first
        assert len(await service.audit_trail(first.id)) == 1
        assert len(await _events(service.store)) == 1


async def test_idempotency_conflict(backend: Backend) -> None:
    """The same key with other parameters raises IdempotencyConflict and changes nothing."""
    async with service_on(backend) as service:
        await service.create_payment(CUSTOMER, "10.00", actor=USER, idempotency_key="k")
        with pytest.raises(IdempotencyConflict) as caught:
            await service.create_payment(CUSTOMER, "11.00", actor=USER, idempotency_key="k")
        assert caught.value.key == "k"
        assert await service.count_payments() == 1


async def test_concurrent_creates_with_one_key(backend: Backend) -> None:
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


async def test_keys_are_scoped_by_caller(backend: Backend) -> None:
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
            CUSTOMER, "99.00", actor=Actor("user-3", roles={Role.USER}), idempotency_key="shared"
        )
        assert third.id not in mine | theirs
        # A batch scopes its items' keys by its own actor.
        (batched,) = await service.create_payments(
            [NewPayment(CUSTOMER, "5.00", idempotency_key="shared")], actor=ADMIN
        )
        assert await service.count_payments() == 4
        assert len({batched.id, third.id, *mine, *theirs}) == 4
        assert len(await _events(service.store)) == 4


async def test_purged_keys_can_be_used_again(backend: Backend) -> None:
    """Keys older than the retention are released; newer ones stay claimed."""
    clock = [utc_now() - timedelta(days=2)]
    async with service_on(backend, clock=lambda: clock[0]) as service:
        old = await service.create_payment(CUSTOMER, "1.00", actor=USER, idempotency_key="old")
        clock[0] = utc_now()
        await service.create_payment(CUSTOMER, "1.00", actor=USER, idempotency_key="new")
        assert await service.purge_idempotency_keys(timedelta(hours=24)) == 1
        reused = await service.create_payment(CUSTOMER, "2.00", actor=USER, idempotency_key="old")
        assert reused.id != old.id
        with pytest.raises(IdempotencyConflict):
            await service.create_payment(CUSTOMER, "2.00", actor=USER, idempotency_key="new")


# -- concurrency ---------------------------------------------------------------


async def test_hundred_concurrent_confirms(backend: Backend) -> None:
    """100 concurrent confirms: one winner, 99 InvalidTransition, one entry and one event."""
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "30.00", actor=USER)
        results = await asyncio.gather(
            *(service.confirm_payment(payment.id, actor=ADMIN) for _ in range(100)),
            return_exceptions=True,
        )
        kinds = Counter(type(r).__name__ for r in results)
        assert kinds == Counter({"Payment": 1, "InvalidTransition": 99})
        trail = await service.audit_trail(payment.id)
        assert [e.action for e in trail] == ["created", "confirmed"]
        events = await _events(service.store)
        assert [e.type for e in events] == ["payment.created", "payment.confirmed"]


async def test_processes_race_for_the_same_payments(backend: Backend) -> None:
    """4 processes confirm the same 40 payments and create with the same 25 keys."""
    _shared(backend)
    async with service_on(backend) as service:
        payments = [await service.create_payment(CUSTOMER, "1.00", actor=USER) for _ in range(40)]
        ids = [str(p.id) for p in payments]
        keys = [f"race-{i}" for i in range(25)]
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager, context.Pool(4) as pool:
            barrier = manager.Barrier(4)
            orders = [random.sample(ids, len(ids)) for _ in range(4)]
            results = await asyncio.to_thread(
                pool.starmap, race, [(backend.open_store, o, keys, barrier) for o in orders]
            )
        won = [pid for r in results for pid in r["won"]]
        assert sorted(won) == sorted(ids)  # every payment confirmed exactly once
        assert sum(r["lost"] for r in results) == 3 * 40
        created = {pid for r in results for pid in r["created"]}
        assert len(created) == 25
        assert await service.count_payments() == 65
        assert await service.count_payments(status=PaymentStatus.CONFIRMED) == 40
        for payment in payments:
            trail = await service.audit_trail(payment.id)
            assert [e.action for e in trail] == ["created", "confirmed"]
        events = Counter(e.type for e in await _events(service.store))
        assert events == Counter({"payment.created": 65, "payment.confirmed": 40})


# -- money movement ------------------------------------------------------------


async def test_authorize_capture_and_refund(backend: Backend) -> None:
    """Authorize, capture part, refund in two parts: exact amounts, entries, events, operations."""
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
        assert (final.status, final.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("80.00"))
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
        assert (events[3].operation["amount"], events[3].operation["reason"]) == ("30.00", "late")
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
    backend: Backend, amount: str, currency: str, refund: str, left: str, finer: str
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


async def test_sixteen_refunds_race_for_one_payment(backend: Backend) -> None:
    """16 concurrent partial refunds asking for 150% of the capture refund at most 100%."""
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "160.00", actor=USER)
        await service.confirm_payment(payment.id, actor=ADMIN)
        results = await asyncio.gather(
            *(service.refund_payment(payment.id, "15.00", actor=ADMIN) for _ in range(16)),
            return_exceptions=True,
        )
        done = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, AmountExceeded)]
        assert len(done) + len(refused) == 16, results
        stored = await service.store.get(payment.id)
        assert stored is not None
        assert len(done) == 10  # 10 x 15.00 fits in 160.00; an 11th would not
        assert sum(o.amount for o in done) == stored.refunded_amount == Decimal("150.00")
        assert stored.refunded_amount <= stored.captured_amount
        assert len(await service.operations(payment.id)) == 10
        assert len(await service.audit_trail(payment.id)) == 12


async def test_processes_race_to_refund_one_payment(backend: Backend) -> None:
    """4 processes, 16 refunds of 15.00 against 160.00 captured: exactly 10 go through."""
    _shared(backend)
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "160.00", actor=USER)
        await service.confirm_payment(payment.id, actor=ADMIN)
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager, context.Pool(4) as pool:
            barrier = manager.Barrier(4)
            results = await asyncio.to_thread(
                pool.starmap,
                refund_race,
                [(backend.open_store, str(payment.id), ["15.00"] * 4, barrier)] * 4,
            )
        refunded = [Decimal(a) for r in results for a in r["refunded"]]
        assert len(refunded) == 10
        assert sum(len(r["refused"]) for r in results) == 6
        stored = await service.store.get(payment.id)
        assert stored is not None
        assert stored.refunded_amount == sum(refunded) == Decimal("150.00")
        ops = await service.operations(payment.id)
        assert sum(o.amount for o in ops) == stored.refunded_amount


async def test_one_refund_key_books_one_refund(backend: Backend) -> None:
    """The same refund key from concurrent callers books one refund; others get it back."""
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "50.00", actor=USER)
        await service.confirm_payment(payment.id, actor=ADMIN)
        results = await asyncio.gather(
            *(
                service.refund_payment(payment.id, "5.00", actor=ADMIN, idempotency_key="r-1")
                for _ in range(10)
            )
        )
        assert len({o.id for o in results}) == 1
        stored = await service.store.get(payment.id)
        assert stored is not None
        assert stored.refunded_amount == Decimal("5.00")
        # Without an amount, a repeat returns what the first call refunded.
        whole = await service.refund_payment(payment.id, actor=ADMIN, idempotency_key="r-2")
        again = await service.refund_payment(payment.id, actor=ADMIN, idempotency_key="r-2")
        assert again == whole
        assert whole.amount == Decimal("45.00")
        with pytest.raises(IdempotencyConflict):
            await service.refund_payment(payment.id, "1.00", actor=ADMIN, idempotency_key="r-1")


async def test_a_keyed_transition_repeats_as_it_first_left_the_payment(backend: Backend) -> None:
    """Each transition with a key: a repeat returns the payment as the first call left it,
    even after it moved on, and writes no entry or event."""
    async with service_on(backend) as service:
        steps: dict[str, Callable[[Any, str], Awaitable[Payment]]] = {
            "confirm": lambda p, k: service.confirm_payment(p, actor=ADMIN, idempotency_key=k),
            "authorize": lambda p, k: service.authorize_payment(p, actor=ADMIN, idempotency_key=k),
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


async def test_a_transition_key_asks_for_one_thing(backend: Backend) -> None:
    """The same key on another payment, for another action or with other parameters raises
    IdempotencyConflict and changes nothing; another caller's same key is its own."""
    other = Actor("admin-2", roles={Role.ADMIN})
    async with service_on(backend) as service:
        one = await service.create_payment(CUSTOMER, "10.00", actor=USER)
        two = await service.create_payment(CUSTOMER, "10.00", actor=USER)
        await service.authorize_payment(one.id, actor=ADMIN, idempotency_key="k")
        attempts = [
            service.authorize_payment(two.id, actor=ADMIN, idempotency_key="k"),
            service.capture_payment(one.id, actor=ADMIN, idempotency_key="k"),
            service.cancel_payment(two.id, actor=ADMIN, idempotency_key="k"),
        ]
        for attempt in attempts:
            with pytest.raises(IdempotencyConflict) as caught:
                await attempt
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


async def test_sixteen_repeats_of_a_keyed_confirm_race(backend: Backend) -> None:
    """16 concurrent repeats of one keyed confirm: all return the confirmed payment, and
    there is exactly one audit entry and one event for the confirmation."""
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "30.00", actor=USER)
        results = await asyncio.gather(
            *(
                service.confirm_payment(payment.id, actor=ADMIN, idempotency_key="once")
                for _ in range(16)
            )
        )
        assert {(p.status, p.version) for p in results} == {(PaymentStatus.CONFIRMED, 2)}
        trail = await service.audit_trail(payment.id)
        assert [e.action for e in trail] == ["created", "confirmed"]
        events = await _events(service.store)
        assert [e.type for e in events] == ["payment.created", "payment.confirmed"]


async def test_capture_races_cancel(backend: Backend) -> None:
    """A capture and a void racing on one authorization: exactly one of them happens."""
    async with service_on(backend, cache=None) as service:
        for _ in range(5):
            payment = await service.create_payment(CUSTOMER, "20.00", actor=USER)
            await service.authorize_payment(payment.id, actor=ADMIN)
            results = await asyncio.gather(
                service.capture_payment(payment.id, actor=ADMIN),
                service.cancel_payment(payment.id, actor=ADMIN),
                return_exceptions=True,
            )
            won = [r for r in results if not isinstance(r, BaseException)]
            assert len(won) == 1, results
            assert any(isinstance(r, InvalidTransition) for r in results)
            trail = await service.audit_trail(payment.id)
            assert len(trail) == 3
            assert trail[-1].to_status is won[0].status


async def test_over_capture_is_refused(backend: Backend) -> None:
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


async def test_store_refuses_a_refund_with_no_room(backend: Backend) -> None:
    """apply writes a refund only if the stored amounts leave room: else False, nothing written."""
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


# -- processors and the worker -------------------------------------------------


def _simulated(**options: Any) -> SimulatedProcessor:
    return SimulatedProcessor(**{"latency": (0, 0), "seed": 11, "success_rate": 1.0, **options})


async def test_the_worker_confirms_authorizes_and_fails(backend: Backend) -> None:
    """Queued in the creation's transaction, charges and authorizations are carried out."""
    processor = _simulated(success_rate=1.0)
    async with service_on(backend, processor=processor) as service:
        charged = await service.create_payment(
            CUSTOMER, "10.00", actor=USER, capture_method="automatic"
        )
        held = await service.create_payment(CUSTOMER, "20.00", actor=USER, capture_method="manual")
        (intent,) = await service.operations(charged.id)
        assert (intent.kind, intent.status) == (OperationKind.CHARGE, OperationStatus.PENDING)
        worker = PaymentWorker(service)
        assert await worker.run_once() == 2
        assert await worker.run_once() == 0
        confirmed = await service.get_payment(charged.id)
        assert (confirmed.status, confirmed.captured_amount) == (
            PaymentStatus.CONFIRMED,
            Decimal("10.00"),
        )
        assert (await service.get_payment(held.id)).status is PaymentStatus.AUTHORIZED
        (done,) = await service.operations(charged.id)
        assert (done.status, done.processor, done.attempts) == (
            OperationStatus.SUCCEEDED,
            "simulated",
            1,
        )
        assert done.reference == f"sim-{done.id}"
        trail = await service.audit_trail(charged.id)
        assert [(e.action, e.actor_id) for e in trail] == [
            ("created", "user-1"),
            ("confirmed", "worker"),
        ]
        processor.success_rate = 0.0
        declined = await service.create_payment(
            CUSTOMER, "30.00", actor=USER, capture_method="automatic"
        )
        await worker.run_once()
        failed = await service.get_payment(declined.id)
        assert failed.status is PaymentStatus.FAILED
        assert failed.failure_reason is not None
        assert "declined" in failed.failure_reason
        assert processor.executions() == 2  # declines move no money
        with pytest.raises(ValidationError):
            await service.create_payment(CUSTOMER, "1.00", actor=USER, capture_method="later")


async def test_an_unknown_outcome_is_looked_up_never_failed(backend: Backend) -> None:
    """A timeout after the money moved is reconciled by lookup, on the service's clock."""
    now = [utc_now()]
    processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
    async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
        payment = await service.create_payment(
            CUSTOMER, "10.00", actor=USER, capture_method="automatic"
        )
        worker = PaymentWorker(service)
        await worker.run_once()
        (op,) = await service.operations(payment.id)
        assert op.status is OperationStatus.UNKNOWN
        assert (await service.get_payment(payment.id)).status is PaymentStatus.PENDING
        assert await worker.run_once() == 0  # not due before the first lookup
        now[0] += timedelta(seconds=6)
        await worker.run_once()
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
        assert processor.ledger[op.id] == 1


async def test_not_found_reexecutes_only_when_the_processor_promises(backend: Backend) -> None:
    """A lost request the processor never saw runs again under the same id: once."""
    now = [utc_now()]
    processor = _simulated(timeout_rate=1.0, executed_on_timeout=0.0)
    async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
        payment = await service.create_payment(
            CUSTOMER, "10.00", actor=USER, capture_method="automatic"
        )
        worker = PaymentWorker(service)
        await worker.run_once()  # times out; nothing moved
        processor.timeout_rate = 0.0
        now[0] += timedelta(seconds=6)
        await worker.run_once()  # lookup: NOT_FOUND, and the processor promises
        await worker.run_once()  # executed again, under the same id
        (op,) = await service.operations(payment.id)
        assert (op.status, op.lookups) == (OperationStatus.SUCCEEDED, 1)
        assert processor.ledger == {op.id: 1}
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED


async def test_a_person_settles_what_no_lookup_could(backend: Backend) -> None:
    """After the last scheduled lookup an operation needs attention, until resolved."""
    now = [utc_now()]
    processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
    async with service_on(backend, processor=processor, clock=lambda: now[0]) as service:
        payment = await service.create_payment(
            CUSTOMER, "10.00", actor=USER, capture_method="automatic"
        )
        processor.refusing = True  # lookups cannot reach it either
        schedule = (timedelta(seconds=1), timedelta(seconds=2))
        worker = PaymentWorker(service, lookup_schedule=schedule)
        processor.refusing = False
        await worker.run_once()  # the execution times out: unknown
        processor.lookup = _never_known  # type: ignore[method-assign]
        for _ in range(3):
            now[0] += timedelta(seconds=3)
            await worker.run_once()
        (op,) = await service.operations_needing_attention()
        assert op.payment_id == payment.id
        assert (await service.health()).status == "degraded"
        assert (await service.get_payment(payment.id)).status is PaymentStatus.PENDING
        with pytest.raises(PermissionDenied):
            await service.resolve_operation(op.id, "succeeded", actor=USER, reason="bank says")
        done = await service.resolve_operation(
            op.id, "succeeded", actor=ADMIN, reason="the bank statement shows it"
        )
        assert done.status is OperationStatus.SUCCEEDED
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
        last = (await service.audit_trail(payment.id))[-1]
        assert (last.action, last.actor_id, last.reason) == (
            "confirmed",
            "admin-1",
            "the bank statement shows it",
        )
        assert await service.operations_needing_attention() == []
        with pytest.raises(ValidationError):
            await service.resolve_operation(op.id, "declined", actor=ADMIN, reason="again")


async def test_callbacks_apply_once(backend: Backend) -> None:
    """A webhook settles a waiting operation once; repeats, echoes and late conflicts don't."""
    processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
    async with service_on(backend, processor=processor) as service:
        payment = await service.create_payment(
            CUSTOMER, "10.00", actor=USER, capture_method="automatic"
        )
        await PaymentWorker(service).run_once()  # sent, and the answer lost: unknown
        processor.timeout_rate = 0.0
        (op,) = await service.operations(payment.id)
        said = ProcessorResult(Outcome.SUCCEEDED, reference="gw-1")
        record = service.record_processor_event
        assert await record("simulated", "evt-1", result=said, operation_id=op.id) is True
        assert await record("simulated", "evt-1", result=said, operation_id=op.id) is False
        (settled,) = await service.operations(payment.id)
        assert (settled.status, settled.reference) == (OperationStatus.SUCCEEDED, "gw-1")
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
        assert await PaymentWorker(service).run_once() == 0  # nothing left to do
        # The same answer again, under another event id and by reference: no change.
        assert await record("simulated", "evt-2", result=said, reference="gw-1") is True
        assert len(await service.audit_trail(payment.id)) == 2
        # A conflicting late answer: the operation needs a person; the payment stays.
        late = ProcessorResult(Outcome.DECLINED, code="reversed")
        assert await record("simulated", "evt-3", result=late, reference="gw-1") is True
        (flagged,) = await service.operations_needing_attention()
        assert flagged.id == op.id
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED
        # A person finds the charge stands: the operation settles; the payment was there.
        stands = await service.resolve_operation(op.id, "succeeded", actor=ADMIN,
                                                 reason="the statement shows it")  # fmt: skip
        assert (stands.status, stands.error) == (
            OperationStatus.SUCCEEDED,
            "resolved by hand by admin-1: the statement shows it",
        )
        assert await service.operations_needing_attention() == []
        assert len(await service.audit_trail(payment.id)) == 2
        assert await record("simulated", "evt-4", result=said, reference="unknown") is True
        with pytest.raises(ValidationError):
            await record("simulated", "evt-5", result=said)


async def test_a_callback_racing_the_worker_applies_once(backend: Backend) -> None:
    """The worker's answer and a webhook for one operation, concurrently: one change."""
    processor = _simulated(timeout_rate=1.0, executed_on_timeout=1.0)
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    async with service_on(
        backend, processor=processor, cache=None, clock=lambda: now[0]
    ) as service:
        made = [
            await service.create_payment(CUSTOMER, "3.00", actor=USER, capture_method="automatic")
            for _ in range(10)
        ]
        await PaymentWorker(service, batch_size=10).run_once()  # sent; every answer lost
        processor.timeout_rate = 0.0
        now[0] += timedelta(seconds=5)  # the lookups are due: they race the webhooks
        ops = [(await service.operations(p.id))[0] for p in made]
        said = ProcessorResult(Outcome.SUCCEEDED, reference="gw")
        await asyncio.gather(
            PaymentWorker(service, batch_size=10).run_once(),
            *(
                service.record_processor_event("simulated", f"e-{o.id}", result=said,
                                               operation_id=o.id)
                for o in ops
            ),
        )  # fmt: skip
        for payment in made:
            trail = await service.audit_trail(payment.id)
            assert [e.action for e in trail] == ["created", "confirmed"]
        assert await service.operations_needing_attention() == []


async def test_a_running_worker_keeps_at_most_a_batch_in_flight(backend: Backend) -> None:
    """``run`` claims a new operation as each one finishes, never more than
    ``batch_size`` at once, and finishes what it claimed when stopped."""
    processor = _simulated(latency=(0.001, 0.01))
    calls, most = [0], [0]
    execute = processor.execute

    async def counted(request: ProcessorRequest) -> ProcessorResult:
        calls[0] += 1
        most[0] = max(most[0], calls[0])
        try:
            return await execute(request)
        finally:
            calls[0] -= 1

    processor.execute = counted  # type: ignore[method-assign]
    async with service_on(backend, processor=processor, cache=None) as service:
        made = [
            await service.create_payment(CUSTOMER, "2.00", actor=USER, capture_method="automatic")
            for _ in range(25)
        ]
        stop = asyncio.Event()
        running = asyncio.create_task(
            PaymentWorker(service, batch_size=4, poll_interval=0.01).run(stop)
        )
        while await _unsettled(service.store):  # noqa: ASYNC110 - the worker runs meanwhile
            await asyncio.sleep(0.01)
        stop.set()
        await running
        assert 1 < most[0] <= 4
        assert {(await service.get_payment(p.id)).status for p in made} == {PaymentStatus.CONFIRMED}
        assert len(processor.ledger) == 25


async def test_follow_ups_go_to_the_processor_that_holds_the_money(backend: Backend) -> None:
    """Capture, refund and void are queued like charges, sent where the original is."""
    primary, backup = _simulated(name="primary"), _simulated(name="backup")
    primary.refusing = True  # the authorization fails over to the backup
    router = Router([primary, backup])
    async with service_on(backend, processor=router) as service:
        worker = PaymentWorker(service)
        payment = await service.create_payment(CUSTOMER, "10.00", actor=USER,
                                               capture_method="manual")  # fmt: skip
        await worker.run_once()
        primary.refusing = False
        queued = await service.capture_payment(payment.id, actor=ADMIN, amount="6.00")
        assert (queued.status, queued.version) == (PaymentStatus.AUTHORIZED, 3)
        for second in (
            service.capture_payment(payment.id, actor=ADMIN),
            service.cancel_payment(payment.id, actor=ADMIN),
        ):
            with pytest.raises(InvalidTransition, match="capture is under way"):
                await second
        await worker.run_once()
        captured = await service.get_payment(payment.id)
        assert (captured.status, captured.captured_amount) == (
            PaymentStatus.CONFIRMED,
            Decimal("6.00"),
        )
        first = await service.refund_payment(payment.id, "2.00", actor=ADMIN)
        assert (first.status, first.processor) == (OperationStatus.PENDING, "backup")
        with pytest.raises(AmountExceeded):  # 4.00 is left: the pending 2.00 is reserved
            await service.refund_payment(payment.id, "5.00", actor=ADMIN)
        await worker.run_once()
        backup.success_rate = 0.0
        rest = await service.refund_payment(payment.id, actor=ADMIN)
        assert rest.amount == Decimal("4.00")
        await worker.run_once()
        after = await service.get_payment(payment.id)
        assert (after.status, after.refunded_amount, after.pending_refunds) == (
            PaymentStatus.CONFIRMED,
            Decimal("2.00"),
            Decimal(0),
        )
        ops = await service.operations(payment.id)
        assert [(o.kind.value, o.status.value, o.processor) for o in ops] == [
            ("authorize", "succeeded", "backup"),
            ("capture", "succeeded", "backup"),
            ("refund", "succeeded", "backup"),
            ("refund", "declined", "backup"),
        ]
        assert primary.ledger == {}
        assert set(backup.ledger) == {o.id for o in ops[:3]}
        assert all(count == 1 for count in backup.ledger.values())
        assert [e.action for e in await service.audit_trail(payment.id)] == [
            "created",
            "authorized",
            "capture_queued",
            "captured",
            "refund_queued",
            "refunded",
            "refund_queued",
            "refund_declined",
        ]
        types = [e.type for e in await _events(service.store) if e.payment_id == payment.id]
        assert types[-2:] == ["payment.refund_queued", "payment.refund_declined"]


async def test_a_worker_that_died_after_sending_is_never_sent_twice(backend: Backend) -> None:
    """A lease that ran out on a pending operation means it may have been sent: the next
    worker looks it up at every processor, and never fails over to send it again."""
    now = [utc_now()]
    first, second = _simulated(name="first"), _simulated(name="second")
    router = Router([first, second], clock=lambda: now[0])
    async with service_on(backend, processor=router, clock=lambda: now[0]) as service:
        payment = await service.create_payment(CUSTOMER, "10.00", actor=USER,
                                               capture_method="automatic")  # fmt: skip
        (taken,) = await service.store.claim_operations(
            1, now=now[0], lease_until=now[0] + timedelta(seconds=60)
        )
        await router.execute(
            ProcessorRequest(taken.id, taken.kind, taken.payment_id, taken.amount, "USD")
        )  # ... and the worker dies before recording the answer
        first.refusing = True  # a failover now would charge the customer twice
        worker = PaymentWorker(service)
        assert await worker.run_once() == 0  # still leased
        now[0] += timedelta(seconds=61)
        assert await worker.run_once() == 1
        (op,) = await service.operations(payment.id)
        assert (op.status, op.processor) == (OperationStatus.UNKNOWN, None)
        first.refusing = False
        now[0] += timedelta(seconds=5)
        await worker.run_once()
        (op,) = await service.operations(payment.id)
        assert (op.status, op.processor) == (OperationStatus.SUCCEEDED, "first")
        assert (first.ledger, second.ledger) == ({op.id: 1}, {})
        assert (await service.get_payment(payment.id)).status is PaymentStatus.CONFIRMED


async def test_a_void_through_the_processor_and_one_never_sent(backend: Backend) -> None:
    """Cancelling an authorization asks the processor; a charge cancelled first is not sent."""
    processor = _simulated()
    async with service_on(backend, processor=processor) as service:
        worker = PaymentWorker(service)
        held = await service.create_payment(CUSTOMER, "8.00", actor=USER, capture_method="manual")
        await worker.run_once()
        asked = await service.cancel_payment(held.id, actor=ADMIN, reason="customer changed mind")
        assert asked.status is PaymentStatus.AUTHORIZED
        await worker.run_once()
        assert (await service.get_payment(held.id)).status is PaymentStatus.CANCELLED
        charge = await service.create_payment(CUSTOMER, "9.00", actor=USER,
                                              capture_method="automatic")  # fmt: skip
        await service.cancel_payment(charge.id, actor=ADMIN)  # before the worker sends it
        await worker.run_once()
        (unsent,) = await service.operations(charge.id)
        assert (unsent.status, unsent.attempts) == (OperationStatus.DECLINED, 0)
        assert unsent.error == "not sent: the payment is Cancelled"
        assert unsent.id not in processor.ledger
        assert len(processor.ledger) == 2  # the authorization and the void
        by_hand = await service.create_payment(CUSTOMER, "7.00", actor=USER)
        await service.confirm_payment(by_hand.id, actor=ADMIN)
        inline = await service.refund_payment(by_hand.id, actor=ADMIN)  # no processor holds it
        assert (inline.status, inline.processor) == (OperationStatus.SUCCEEDED, None)


async def test_concurrent_refunds_through_a_processor_never_exceed_the_capture(
    backend: Backend,
) -> None:
    """16 refunds asking for 150% of the capture, at once: at most 100% is reserved."""
    processor = _simulated()
    async with service_on(backend, processor=processor, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, "16.00", actor=USER,
                                               capture_method="automatic")  # fmt: skip
        worker = PaymentWorker(service, batch_size=20)
        await worker.run_once()

        async def ask() -> Operation | None:
            try:
                return await service.refund_payment(payment.id, "1.50", actor=ADMIN)
            except AmountExceeded:
                return None

        asked = [op for op in await asyncio.gather(*(ask() for _ in range(16))) if op]
        assert len(asked) == 10  # 10 x 1.50 = 15.00 <= 16.00 < 11 x 1.50
        while await worker.run_once():
            continue
        after = await service.get_payment(payment.id)
        assert (after.refunded_amount, after.pending_refunds) == (Decimal("15.00"), Decimal(0))
        assert all(processor.ledger[op.id] == 1 for op in asked)


CHAOS_PAYMENTS = int(os.environ.get("PAYMENTORCH_CHAOS_PAYMENTS", "2000"))
CHAOS_KILLS = 8


async def test_chaos_never_charges_twice_nor_guesses(backend: Backend, tmp_path: Path) -> None:
    """Payments flow through two processors (5% timeouts, half of them executed; 2%
    refused connections on the first) while two worker processes are killed with SIGKILL
    at random and restarted, and 10% of the answers also arrive as webhooks, twice and out
    of order. In the end no operation moved money twice, the store agrees with the
    processors' ledger, nothing was failed by a timer, and every payment's status, audit
    trail and events agree."""
    _shared(backend)
    rng = random.Random(20261126)
    ledger = str(tmp_path / "processors.db")
    sources = chaos.processors(ledger, seed=1)
    async with service_on(backend, processor=Router(sources), cache=None) as service:
        workers = chaos.Workers(backend.open_store, ledger)
        webhooks = chaos.Webhooks(service, sources, rng)
        stop = asyncio.Event()
        workers.start()
        made: list[Payment] = []

        async def settled() -> int:
            waiting = await service.store.count(status=PaymentStatus.PENDING, customer_id=None)
            return len(made) - waiting

        moments = rng.sample(range(100, max(101, CHAOS_PAYMENTS - 100)), CHAOS_KILLS)
        killing = asyncio.create_task(workers.kill_at_random(stop, moments, rng, settled))
        started = time.monotonic()
        try:
            for index in range(CHAOS_PAYMENTS):
                method = "manual" if index % 10 == 0 else "automatic"
                amount = f"{1 + index % 97}.25"
                made.append(
                    await service.create_payment(
                        CUSTOMER, amount, actor=USER, capture_method=method
                    )
                )
                if index % 50 == 0:
                    await webhooks.deliver_new()
            while not killing.done() or await _unsettled(service.store):
                assert time.monotonic() - started < 600, "the workers did not finish in time"
                await webhooks.deliver_new()
                await asyncio.sleep(0.1)  # polling for completion, not waiting out a race
        finally:
            stop.set()
            await killing
            workers.stop()
        await webhooks.deliver_new()
        elapsed = time.monotonic() - started
        found = await chaos.examine(service, made, sources, await _events(service.store))
        print(
            f"\nchaos on {backend.name}: {len(made)} payments in {elapsed:.1f} s,"
            f" {workers.kills} workers killed, operations {dict(found.statuses)},"
            f" {found.lookups} lookups, {found.reexecuted} executed again under the same id,"
            f" callbacks for {webhooks.operations} operations"
            f" ({webhooks.fresh} new, {webhooks.repeats} repeats, {webhooks.refused} refused"
            " before the worker had sent their operation, and delivered again)"
        )
        assert found.executed_twice == []
        assert found.at_two_processors == []
        assert found.disagreements == []
        assert found.statuses["pending"] == found.statuses["unknown"] == 0  # no timer decided
        assert found.event_mismatches == []
        assert workers.kills == CHAOS_KILLS
        assert (webhooks.fresh, webhooks.repeats) == (2 * webhooks.operations, webhooks.operations)
        assert webhooks.waiting == 0


async def _unsettled(store: PaymentStore) -> bool:
    for status in (OperationStatus.PENDING, OperationStatus.UNKNOWN):
        if await store.operations_with_status(status, limit=1):
            return True
    return False


async def _never_known(request: Any) -> Any:
    return ProcessorResult(Outcome.UNKNOWN, message="no answer")


async def test_two_workers_share_the_work_once(backend: Backend) -> None:
    """Two workers racing over 30 intents: each operation is executed once, all settle."""
    processor = _simulated(success_rate=0.8)
    async with service_on(backend, processor=processor, cache=None) as service:
        made = [
            await service.create_payment(CUSTOMER, "1.00", actor=USER, capture_method="automatic")
            for _ in range(30)
        ]
        workers = [PaymentWorker(service, batch_size=4) for _ in range(2)]

        async def drain(worker: PaymentWorker) -> None:
            while await worker.run_once():
                continue

        await asyncio.gather(*(drain(w) for w in workers))
        statuses = Counter([(await service.get_payment(p.id)).status for p in made])
        assert statuses[PaymentStatus.PENDING] == 0
        assert sum(statuses.values()) == 30
        assert all(count == 1 for count in processor.ledger.values())
        assert len(processor.ledger) == statuses[PaymentStatus.CONFIRMED]


# -- credit limits -------------------------------------------------------------

CREDIT = CreditPolicy(
    limit=Decimal("100.00"),
    currency="USD",
    limit_for=lambda customer: Decimal("5.00") if customer == "TINY-00001" else None,
)


async def test_credit_limits_what_a_customer_may_owe(backend: Backend) -> None:
    """Creations reserve exposure up to the limit (reaching it exactly is allowed); a
    creation past it raises and writes nothing; settled payments release it."""
    async with service_on(backend, credit=CREDIT) as service:
        first = await service.create_payment(CUSTOMER, "60.00", actor=USER, idempotency_key="a")
        again = await service.create_payment(CUSTOMER, "60.00", actor=USER, idempotency_key="a")
        assert again.id == first.id  # a replay reserves nothing more
        second = await service.create_payment(CUSTOMER, "40.00", actor=USER)
        assert await service.credit_exposure(CUSTOMER) == Decimal("100.00")
        with pytest.raises(CreditLimitExceeded) as caught:
            await service.create_payment(CUSTOMER, "0.01", actor=USER)
        assert (caught.value.exposure, caught.value.requested, caught.value.limit) == (
            Decimal("100.00"), Decimal("0.01"), Decimal("100.00"),
        )  # fmt: skip
        assert await service.count_payments(customer_id=CUSTOMER) == 2
        euros = await service.create_payment(CUSTOMER, "500.00", actor=USER, currency="EUR")
        assert euros.status is PaymentStatus.PENDING  # other currencies are not limited
        with pytest.raises(CreditLimitExceeded):  # all or nothing
            await service.create_payments(
                [NewPayment("WXYZ-00001", "60.00"), NewPayment("WXYZ-00001", "60.00")],
                actor=ADMIN,
            )
        assert await service.count_payments(customer_id="WXYZ-00001") == 0
        with pytest.raises(CreditLimitExceeded):
            await service.create_payment("TINY-00001", "5.01", actor=USER)
        await service.confirm_payment(first.id, actor=ADMIN)
        assert await service.credit_exposure(CUSTOMER) == Decimal("40.00")
        await service.authorize_payment(second.id, actor=ADMIN)
        assert await service.credit_exposure(CUSTOMER) == Decimal("40.00")
        await service.capture_payment(second.id, actor=ADMIN, amount="10.00")
        assert await service.credit_exposure(CUSTOMER) == 0
        third = await service.create_payment(CUSTOMER, "100.00", actor=USER)
        await service.cancel_payment(third.id, actor=ADMIN)
        fourth = await service.create_payment(CUSTOMER, "100.00", actor=USER)
        await service.fail_payment(fourth.id, reason="declined", actor=ADMIN)
        bulk = await service.create_payment(CUSTOMER, "30.00", actor=USER)
        await service.confirm_payments([bulk.id], actor=ADMIN)
        assert await service.credit_exposure(CUSTOMER) == 0
        events = [e.type for e in await _events(service.store)]
        assert events.count("payment.created") == 6  # none for the refused creations


async def test_concurrent_creations_never_pass_the_limit(backend: Backend) -> None:
    """32 creations of 10.00 at once against a limit of 100.00: exactly 10 are made."""
    async with service_on(backend, credit=CREDIT, cache=None) as service:

        async def one() -> bool:
            try:
                await service.create_payment("LIMT-00001", "10.00", actor=USER)
            except CreditLimitExceeded:
                return False
            return True

        made = await asyncio.gather(*(one() for _ in range(32)))
        assert sum(made) == 10
        assert await service.credit_exposure("LIMT-00001") == Decimal("100.00")
        assert await service.count_payments(customer_id="LIMT-00001") == 10


async def test_four_processes_never_pass_the_limit(backend: Backend) -> None:
    """32 creations split over 4 processes, at once: exactly 10 under a 100.00 limit."""
    _shared(backend)
    await _close(await backend.open_store())  # the schema exists before the children start
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(4) as pool:
        barrier = manager.Barrier(4)
        results = await asyncio.to_thread(
            pool.starmap, credit_race, [(backend.open_store, 8, "100.00", barrier)] * 4
        )
    outcomes = [o for result in results for o in result]
    assert Counter(outcomes) == {"created": 10, "refused": 22}
    async with service_on(backend, credit=CREDIT) as service:
        assert await service.credit_exposure("LIMT-00001") == Decimal("100.00")
        assert await service.count_payments(customer_id="LIMT-00001") == 10


# -- installment plans ---------------------------------------------------------

AFTERPAY_AU = LateFeePolicy(
    first_fee=Decimal(10), repeat_fee=Decimal(7), cap_percent=25, cap_amount=Decimal(68),
    single_fee_below=Decimal(40),
)  # fmt: skip


async def test_a_plan_from_purchase_to_completion(backend: Backend) -> None:
    """Pay in 4: stored with the payment, activated by confirmation, overdue and late
    fees on the clock, paid by hand, a refund allocated from the last installment; the
    exposure follows what is owed and every step leaves its events."""
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with service_on(backend, clock=lambda: now[0], credit=credit,
                          late_fees=AFTERPAY_AU) as service:  # fmt: skip
        payment = await service.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        assert payment.has_plan
        plan = await service.plan(payment.id)
        assert (plan.status, [i.amount for i in plan.installments]) == (
            PlanStatus.PENDING, [Decimal("25.00")] * 4,
        )  # fmt: skip
        assert await service.credit_exposure(CUSTOMER) == Decimal("100.00")
        with pytest.raises(ValidationError, match="captured whole"):
            await service.capture_payment(payment.id, actor=ADMIN, amount="50.00")
        await service.confirm_payment(payment.id, actor=ADMIN)
        plan = await service.plan(payment.id)
        assert (plan.status, plan.installments[0].status) == (PlanStatus.ACTIVE, "paid")
        assert await service.credit_exposure(CUSTOMER) == Decimal("75.00")
        assert await service.process_overdue() == 0
        now[0] += timedelta(days=15)
        assert await service.process_overdue() == 1
        assert await service.process_overdue() == 0  # nothing new at the same moment
        now[0] += timedelta(days=8)
        assert await service.process_overdue() == 1  # the repeat fee, 7 days on
        plan = await service.plan(payment.id)
        assert plan.status is PlanStatus.DELINQUENT
        assert [(f.installment, f.amount) for f in plan.late_fees] == [
            (2, Decimal(10)), (2, Decimal(7)),
        ]  # fmt: skip
        with pytest.raises(PermissionDenied):
            await service.pay_installment(payment.id, 2, actor=USER)
        plan = await service.pay_installment(payment.id, 2, actor=ADMIN)
        assert plan.status is PlanStatus.ACTIVE
        assert await service.credit_exposure(CUSTOMER) == Decimal("50.00")
        refund_op = await service.refund_payment(payment.id, "30.00", actor=ADMIN)
        assert refund_op.status is OperationStatus.SUCCEEDED
        plan = await service.plan(payment.id)
        assert [(i.status.value, i.amount) for i in plan.installments[2:]] == [
            ("scheduled", Decimal("20.00")), ("cancelled", Decimal("0.00")),
        ]  # fmt: skip
        assert await service.credit_exposure(CUSTOMER) == Decimal("20.00")
        plan = await service.pay_installment(payment.id, 3, actor=ADMIN)
        assert (plan.status, plan.owed) == (PlanStatus.COMPLETED, Decimal(0))
        assert await service.credit_exposure(CUSTOMER) == 0
        with pytest.raises(ValidationError, match="installment 3 is paid"):
            await service.pay_installment(payment.id, 3, actor=ADMIN)
        assert [e.action for e in await service.audit_trail(payment.id)] == [
            "created", "confirmed", "installment_late", "late_fee_charged",
            "installment_paid", "refunded", "installment_paid",
        ]  # fmt: skip
        types = [e.type for e in await _events(service.store) if e.payment_id == payment.id]
        assert types == [
            "payment.created", "payment.confirmed", "plan.activated",
            "plan.installment_overdue", "plan.late_fee_charged", "plan.late_fee_charged",
            "plan.installment_paid", "payment.refunded", "plan.refund_allocated",
            "plan.installment_paid", "plan.completed",
        ]  # fmt: skip


async def test_the_worker_collects_installments_through_the_processor(backend: Backend) -> None:
    """Due installments are collected once each through the processor; a declined one
    stays owed, goes overdue, and is recorded paid by hand."""
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    processor = _simulated()
    async with service_on(backend, processor=processor, clock=lambda: now[0],
                          late_fees=AFTERPAY_AU) as service:  # fmt: skip
        worker = PaymentWorker(service)
        payment = await service.create_payment(
            CUSTOMER, "100.00", actor=USER, capture_method="automatic", plan=PlanTerms()
        )
        await worker.run_once()
        assert (await service.plan(payment.id)).status is PlanStatus.ACTIVE
        assert await worker.run_plans() == 0  # nothing due yet
        now[0] += timedelta(days=14)
        assert await worker.run_plans() == 1
        assert await worker.run_plans() == 0  # queued once
        await worker.run_once()
        plan = await service.plan(payment.id)
        assert [i.status.value for i in plan.installments] == ["paid", "paid", "scheduled",
                                                               "scheduled"]  # fmt: skip
        processor.success_rate = 0.0
        now[0] += timedelta(days=14)
        assert await worker.run_plans() == 1
        await worker.run_once()
        now[0] += timedelta(hours=1)
        assert await worker.run_plans() == 1  # not collected again: overdue, with a fee
        plan = await service.plan(payment.id)
        assert (plan.status, plan.installments[2].status.value) == (
            PlanStatus.DELINQUENT, "overdue",
        )  # fmt: skip
        await service.pay_installment(payment.id, 3, actor=ADMIN)
        processor.success_rate = 1.0
        now[0] += timedelta(days=14, hours=-1)  # installment 4's due date: not late yet
        await worker.run_plans()
        await worker.run_once()
        plan = await service.plan(payment.id)
        assert (plan.status, len(plan.late_fees)) == (PlanStatus.COMPLETED, 1)
        kinds = [(o.kind.value, o.status.value) for o in await service.operations(payment.id)]
        assert kinds == [
            ("installment", "succeeded"), ("installment", "succeeded"),
            ("installment", "declined"), ("installment", "succeeded"),
        ]  # fmt: skip
        assert processor.moved(payment.id) == Decimal("75.00")  # 3 paid by hand
        assert all(count == 1 for count in processor.ledger.values())
        assert len(processor.ledger) == 3


async def test_a_person_waives_an_installment(backend: Backend) -> None:
    """A waived installment is no longer owed (kept, cancelled, to show what was
    forgiven); the reason is in the audit trail; waiving the rest completes the plan."""
    credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with service_on(backend, credit=credit) as service:
        payment = await service.create_payment(CUSTOMER, "90.00", actor=USER,
                                               plan=PlanTerms(installments=3))  # fmt: skip
        await service.confirm_payment(payment.id, actor=ADMIN)
        with pytest.raises(PermissionDenied):
            await service.waive_installment(payment.id, 2, actor=USER, reason="hardship")
        with pytest.raises(ValidationError):
            await service.waive_installment(payment.id, 2, actor=ADMIN, reason="")
        plan = await service.waive_installment(payment.id, 2, actor=ADMIN, reason="hardship")
        assert (plan.installments[1].status.value, plan.installments[1].amount) == (
            "cancelled", Decimal("30.00"),
        )  # fmt: skip
        assert await service.credit_exposure(CUSTOMER) == Decimal("30.00")
        plan = await service.waive_installment(payment.id, 3, actor=ADMIN, reason="hardship")
        assert (plan.status, plan.owed) == (PlanStatus.COMPLETED, Decimal(0))
        last = (await service.audit_trail(payment.id))[-1]
        assert (last.action, last.reason) == ("waived", "hardship")


async def test_plans_end_with_their_payment_and_refuse_what_does_not_apply(
    backend: Backend,
) -> None:
    credit = CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with service_on(backend, credit=credit) as service:
        plain = await service.create_payment(CUSTOMER, "5.00", actor=USER)
        with pytest.raises(ValidationError, match="installments"):
            await service.plan(plain.id)
        with pytest.raises(PaymentNotFound):
            await service.plan(uuid7())
        dropped = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
        await service.cancel_payment(dropped.id, actor=ADMIN)
        assert (await service.plan(dropped.id)).status is PlanStatus.CANCELLED
        assert await service.credit_exposure(CUSTOMER) == Decimal("5.00")
        with pytest.raises(ValidationError):
            await service.create_payment(CUSTOMER, "0.03", actor=USER, plan=PlanTerms())
        with pytest.raises(ValidationError):
            await service.create_payment(CUSTOMER, "9.00", actor=USER, plan="pay-in-4")  # type: ignore[arg-type]


# -- atomicity -----------------------------------------------------------------


async def test_a_failed_event_write_undoes_the_creation(backend: Backend) -> None:
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


async def test_a_failed_event_write_undoes_the_transition(backend: Backend) -> None:
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


async def test_bulk_create_is_all_or_nothing(backend: Backend) -> None:
    """A batch with a key that is already held creates nothing at all."""
    async with service_on(backend) as service:
        await service.create_payment(CUSTOMER, "1.00", actor=ADMIN, idempotency_key="held")
        batch = [NewPayment(CUSTOMER, "2.00"), NewPayment(CUSTOMER, "3.00", idempotency_key="held")]
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


async def test_bulk_confirm(backend: Backend) -> None:
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


# -- listing -------------------------------------------------------------------


async def test_listing_newest_first_with_filters(backend: Backend) -> None:
    """Listing is newest first and filters by status and customer; counts agree."""
    async with service_on(backend) as service:
        made = [
            await service.create_payment(f"ABCD-0000{i % 3}", "1.00", actor=USER) for i in range(9)
        ]
        for payment in made[::2]:
            await service.confirm_payment(payment.id, actor=ADMIN)
        page = await service.list_payments(limit=500)
        assert [p.id for p in page.items] == [p.id for p in reversed(made)]
        assert page.next_cursor is None
        confirmed = await service.list_payments(status="Confirmed")
        assert [p.id for p in confirmed.items] == [p.id for p in reversed(made[::2])]
        mine = await service.list_payments(customer_id="ABCD-00001", status=PaymentStatus.PENDING)
        assert [p.id for p in mine.items] == [made[7].id, made[1].id]
        assert await service.count_payments(status=PaymentStatus.CONFIRMED) == 5
        assert await service.count_payments(customer_id="ABCD-00001") == 3
        assert await service.count_payments(customer_id="ABCD-00001", status="Pending") == 2


async def test_paging_while_others_insert(backend: Backend) -> None:
    """Paging through 1,000 payments while another task inserts: no duplicate, no skip."""
    async with service_on(backend) as service:
        await service.create_payments(
            [NewPayment(CUSTOMER, str(i + 1)) for i in range(1000)], actor=ADMIN
        )
        before = {p.id for p in (await service.list_payments(limit=500)).items}
        seen: list[Any] = []
        stop = asyncio.Event()

        async def insert() -> None:
            while not stop.is_set():
                await service.create_payment(CUSTOMER, "7.77", actor=USER)
                await asyncio.sleep(0)

        inserter = asyncio.create_task(insert())
        cursor = None
        try:
            while True:
                page = await service.list_payments(limit=37, cursor=cursor)
                seen += [p.id for p in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
                await asyncio.sleep(0)  # let the inserter in between pages on every backend
        finally:
            stop.set()
            await inserter
        assert len(seen) == len(set(seen))
        existing = await service.store.list_payments(
            status=None, customer_id=None, limit=10**6, after=None
        )
        original = {p.id for p in existing if p.amount != Decimal("7.77")}
        assert len(original) == 1000
        assert len(existing) > 1000, "the inserter never ran while paging"
        assert original <= set(seen)
        assert before <= set(seen)


async def test_listing_and_counting_by_creation_time(backend: Backend) -> None:
    """created_from (inclusive) and created_to (exclusive) bound listings, pages and counts."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [base]
    async with service_on(backend, clock=lambda: clock[0]) as service:
        made = []
        for day in range(5):
            clock[0] = base + timedelta(days=day, hours=12)
            made.append(await service.create_payment(CUSTOMER, f"{day + 1}.00", actor=USER))
        await service.confirm_payment(made[1].id, actor=ADMIN)
        start, end = base + timedelta(days=1), base + timedelta(days=3)
        page = await service.list_payments(created_from=start, created_to=end)
        assert [p.id for p in page.items] == [made[2].id, made[1].id]
        assert await service.count_payments(created_from=start, created_to=end) == 2
        confirmed = await service.count_payments(
            created_from=start, created_to=end, status=PaymentStatus.CONFIRMED
        )
        assert confirmed == 1
        assert await service.count_payments(created_from=made[2].created_at) == 3
        assert await service.count_payments(created_to=made[2].created_at) == 2
        first = await service.list_payments(created_from=start, limit=2)
        rest = await service.list_payments(created_from=start, limit=2, cursor=first.next_cursor)
        assert rest.next_cursor is None
        assert [p.id for p in first.items + rest.items] == [p.id for p in reversed(made[1:])]


async def test_summary_counts_and_adds_up_exactly(backend: Backend) -> None:
    """The summary counts by status and day, and adds amounts exactly in each currency."""
    base = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    clock = [base]
    async with service_on(backend, clock=lambda: clock[0]) as service:
        a = await service.create_payment(CUSTOMER, "0.10", actor=USER)
        await service.create_payment(CUSTOMER, "0.20", actor=USER)
        await service.create_payment(CUSTOMER, "1000", actor=USER, currency="JPY")
        clock[0] = base + timedelta(hours=1)  # the next day, in UTC
        b = await service.create_payment(CUSTOMER, "1.234", actor=USER, currency="KWD")
        await service.create_payment("WXYZ-00001", "5.00", actor=USER)
        await service.confirm_payment(a.id, actor=ADMIN)
        await service.cancel_payment(b.id, actor=ADMIN)
        summary = await service.summarize_payments(customer_id=CUSTOMER)
        assert summary.by_status == {
            PaymentStatus.PENDING: 2,
            PaymentStatus.AUTHORIZED: 0,
            PaymentStatus.CONFIRMED: 1,
            PaymentStatus.FAILED: 0,
            PaymentStatus.CANCELLED: 1,
            PaymentStatus.REFUNDED: 0,
        }
        assert {c: str(t) for c, t in summary.totals.items()} == {
            "JPY": "1000",
            "KWD": "1.234",
            "USD": "0.30",
        }
        assert [(d.isoformat(), sum(n.values())) for d, n in summary.days] == [
            ("2026-03-01", 3),
            ("2026-03-02", 1),
        ]
        later = await service.summarize_payments(created_from=base + timedelta(minutes=45))
        assert later.totals == {"KWD": Decimal("1.234"), "USD": Decimal("5.00")}


async def test_bad_listing_arguments(backend: Backend) -> None:
    """A malformed cursor, a bad limit and an unknown status are one ValidationError."""
    async with service_on(backend) as service:
        with pytest.raises(ValidationError) as caught:
            await service.list_payments(status="Paid", limit=0, cursor="not-a-cursor")
        assert {e.field for e in caught.value.errors} == {"status", "limit", "cursor"}


# -- storage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("999999.99", "USD"), ("1000", "JPY"), ("1.234", "KWD"), ("0.01", "EUR")],
)
async def test_exact_amounts_round_trip(backend: Backend, amount: str, currency: str) -> None:
    """Amounts come back exactly as given, at the currency's scale."""
    async with service_on(backend, cache=None) as service:
        payment = await service.create_payment(CUSTOMER, amount, actor=USER, currency=currency)
        stored = await service.get_payment(payment.id)
        assert stored.amount == Decimal(amount)
        assert str(stored.amount) == amount
        assert stored.currency == currency
        listed = (await service.list_payments()).items[0]
        assert str(listed.amount) == amount


async def test_durable_across_reopen(backend: Backend) -> None:
    """Payments, audit entries and events survive closing and reopening the store."""
    _shared(backend)
    async with service_on(backend) as service:
        payment = await service.create_payment(CUSTOMER, "12.34", actor=USER, metadata={"x": "y"})
        payment = await service.confirm_payment(payment.id, actor=ADMIN)
    async with service_on(backend) as service:
        assert await service.get_payment(payment.id) == payment
        assert dict((await service.get_payment(payment.id)).metadata) == {"x": "y"}
        assert len(await service.audit_trail(payment.id)) == 2
        assert len(await _events(service.store)) == 2


async def test_audit_trail_records_who_why_and_correlation(backend: Backend) -> None:
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


# -- outbox --------------------------------------------------------------------


async def test_outbox_keeps_each_payments_order(backend: Backend) -> None:
    """Only the oldest pending event of a payment can be claimed."""
    async with service_on(backend) as service:
        a = await service.create_payment(CUSTOMER, "1.00", actor=USER)
        b = await service.create_payment(CUSTOMER, "1.00", actor=USER)
        await service.confirm_payment(a.id, actor=ADMIN)
        now = utc_now()
        lease = now + timedelta(minutes=1)
        first = await service.store.claim_events(10, now=now, lease_until=lease)
        assert [(m.event.payment_id, m.event.type) for m in first] == [
            (a.id, "payment.created"),
            (b.id, "payment.created"),
        ]
        assert await service.store.claim_events(10, now=now, lease_until=lease) == []
        await service.store.mark_delivered([m.event.id for m in first])
        second = await service.store.claim_events(10, now=now, lease_until=lease)
        assert [(m.event.payment_id, m.event.type) for m in second] == [(a.id, "payment.confirmed")]


async def test_outbox_retry_park_and_requeue(backend: Backend) -> None:
    """Failed events wait for their retry time, park when told, and can be re-queued."""
    async with service_on(backend) as service:
        payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
        store = service.store
        now = utc_now()
        (message,) = await store.claim_events(10, now=now, lease_until=now + timedelta(seconds=30))
        await store.mark_failed([message.event.id], error="boom", retry_at=now + timedelta(hours=1))
        assert await store.claim_events(10, now=now, lease_until=now) == []
        later = now + timedelta(hours=2)
        (again,) = await store.claim_events(10, now=later, lease_until=later)
        assert (again.attempts, again.last_error) == (1, "boom")
        await store.mark_failed([again.event.id], error="still", retry_at=None)
        stats = await store.outbox_stats()
        assert (stats.pending, stats.parked) == (0, 1)
        (parked,) = await store.parked_events()
        assert (parked.event.payment_id, parked.attempts) == (payment.id, 2)
        assert await store.requeue_parked() == 1
        (requeued,) = await store.claim_events(10, now=later, lease_until=later)
        assert requeued.attempts == 0
        await store.mark_delivered([requeued.event.id])
        assert (await store.outbox_stats()).pending == 0


async def test_events_survive_a_crash_before_any_relay(backend: Backend) -> None:
    """A process commits payments and dies; a relay elsewhere delivers every event, in order."""
    _shared(backend)
    await _close(await backend.open_store())  # the schema exists before the child starts
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=commit_then_die, args=(backend.open_store, 30, 3))
    child.start()
    await asyncio.to_thread(child.join)
    assert child.exitcode == 0
    store = await backend.open_store()
    try:
        received: list[PaymentEvent] = []

        async def sink(events: Sequence[PaymentEvent]) -> None:
            received.extend(events)

        relay = OutboxRelay(store, sink, batch_size=7)
        while await relay.run_once():
            pass
    finally:
        await store.aclose()
    assert Counter(e.type for e in received) == Counter(
        {"payment.created": 30, "payment.confirmed": 10}
    )
    by_payment: dict[Any, list[str]] = {}
    for event in received:
        by_payment.setdefault(event.payment_id, []).append(event.type)
    assert len(by_payment) == 30
    for types in by_payment.values():
        assert types in (["payment.created"], ["payment.created", "payment.confirmed"])


async def test_a_relay_killed_before_marking_redelivers(backend: Backend, tmp_path: Path) -> None:
    """A relay killed between the sink and the mark: its batch is delivered again, none lost."""
    _shared(backend)
    async with service_on(backend) as service:
        for _ in range(5):
            await service.create_payment(CUSTOMER, "1.00", actor=USER)
    log = str(tmp_path / "deliveries.log")
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=relay_then_die, args=(backend.open_store, log))
    child.start()
    await asyncio.to_thread(child.join)
    assert child.exitcode == 1
    first = read_log(log)
    assert len(first) == 5
    store = await backend.open_store()
    try:
        assert (await store.outbox_stats()).pending == 5  # the kill left them undelivered
        received: list[PaymentEvent] = []

        async def sink(events: Sequence[PaymentEvent]) -> None:
            received.extend(events)

        later = utc_now() + timedelta(hours=1)  # past the dead relay's lease
        relay = OutboxRelay(store, sink, clock=lambda: later)
        while await relay.run_once():
            pass
        assert (await store.outbox_stats()).pending == 0
    finally:
        await store.aclose()
    assert sorted(str(e.id) for e in received) == sorted(row[1] for row in first)


async def test_three_relays_share_two_thousand_events(backend: Backend, tmp_path: Path) -> None:
    """Three relay processes deliver 2,000 events: none lost, each payment's in order."""
    _shared(backend)
    async with service_on(backend, cache=None) as service:
        created = await service.create_payments(
            [NewPayment(CUSTOMER, "1.00") for _ in range(1000)], actor=ADMIN
        )
        result = await service.confirm_payments([p.id for p in created], actor=ADMIN)
        assert len(result.confirmed) == 1000
    context = multiprocessing.get_context("spawn")
    logs = [str(tmp_path / f"relay-{i}.log") for i in range(3)]
    with context.Manager() as manager, context.Pool(3) as pool:
        barrier = manager.Barrier(3)
        counts = await asyncio.to_thread(
            pool.starmap, relay_until_empty, [(backend.open_store, log, barrier) for log in logs]
        )
    rows = sorted(row for log in logs for row in read_log(log))
    assert sum(counts) == len(rows)
    delivered = {row[1] for row in rows}
    assert len(delivered) == 2000
    first_seen: dict[tuple[str, str], int] = {}
    for at, _event_id, payment_id, kind in rows:
        first_seen.setdefault((payment_id, kind), at)
    for payment in created:
        pid = str(payment.id)
        assert first_seen[(pid, "payment.created")] < first_seen[(pid, "payment.confirmed")]
    duplicates = len(rows) - len(delivered)
    print(f"{backend.name}: 3 relays, {len(rows)} deliveries ({counts}), {duplicates} duplicates")
    # Leases outlast these deliveries, so no event is handed to two relays.
    assert duplicates == 0
    assert all(count > 0 for count in counts), f"a relay got no work: {counts}"


async def test_audit_entries_are_never_changed(backend: Backend) -> None:
    """Later changes add entries; earlier ones stay exactly as written."""
    async with service_on(backend) as service:
        payment = await service.create_payment(CUSTOMER, "1.00", actor=USER)
        before = await service.audit_trail(payment.id)
        await service.fail_payment(payment.id, reason="declined", actor=ADMIN)
        await service.purge_idempotency_keys()
        after = await service.audit_trail(payment.id)
        assert after[: len(before)] == before
        assert len(after) == len(before) + 1


async def test_health_ok(backend: Backend) -> None:
    """A reachable store with a fresh outbox reports ok."""
    async with service_on(backend) as service:
        await service.create_payment(CUSTOMER, "1.00", actor=USER)
        report = await service.health()
        assert report.status == "ok"
        assert report.checks["store"]["status"] == "ok"
        assert report.checks["outbox"]["pending"] == 1


# -- the store itself -------------------------------------------------------------


async def test_store_add_then_read(backend: Backend) -> None:
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


async def test_store_apply_with_a_stale_status_writes_nothing(backend: Backend) -> None:
    """apply with an ``expected`` status the payment no longer has returns False, writes nothing."""
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


async def test_store_apply_many_changes_only_the_expected(backend: Backend) -> None:
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


async def test_store_add_with_a_held_key_inserts_nothing(backend: Backend) -> None:
    """add with a key its caller holds returns the holder and writes no payment, entry or event."""
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


async def test_store_add_many_with_a_held_key_inserts_nothing(backend: Backend) -> None:
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


async def test_store_claims_a_transition_key_with_its_change(backend: Backend) -> None:
    """apply with a key its actor holds raises IdempotencyConflict and writes nothing;
    find_request returns the payment as the first change left it; purging forgets it."""
    store = await backend.open_store()
    try:
        a, b = _created(), _created()
        for change in (a, b):
            await store.add(change)
        confirm = attrs.evolve(_changed(a.payment, "confirm"), request=request_key("k", "confirm"))
        assert await store.apply(confirm, expected=PaymentStatus.PENDING) is True
        again = attrs.evolve(_changed(b.payment, "confirm"), request=request_key("k", "confirm"))
        with pytest.raises(IdempotencyConflict):
            await store.apply(again, expected=PaymentStatus.PENDING)
        assert await store.get(b.payment.id) == b.payment
        assert await store.audit_trail(b.payment.id) == [b.audit]
        held = await store.find_request("admin-1", "k")
        assert held is not None
        assert (held.request, held.payment) == (confirm.request, confirm.payment)
        assert await store.find_request("admin-2", "k") is None
        refused = attrs.evolve(_changed(a.payment, "cancel"), request=request_key("c", "cancel"))
        assert await store.apply(refused, expected=PaymentStatus.PENDING) is False
        assert await store.find_request("admin-1", "c") is None  # no change, no claim
        assert [e.id for e in await _events(store)] == [a.event.id, b.event.id, confirm.event.id]
        assert await store.purge_idempotency_keys(utc_now() + timedelta(seconds=1)) == 1
        assert await store.find_request("admin-1", "k") is None
    finally:
        await store.aclose()


async def test_store_claims_are_leased(backend: Backend) -> None:
    """A claimed event is not handed out again until its lease lapses or it is delivered."""
    store = await backend.open_store()
    try:
        created = _created()
        await store.add(created)
        now = utc_now()
        (first,) = await store.claim_events(10, now=now, lease_until=now + timedelta(minutes=1))
        assert first.event.id == created.event.id
        during = now + timedelta(seconds=30)
        assert await store.claim_events(10, now=during, lease_until=during) == []
        after = now + timedelta(minutes=2)
        (again,) = await store.claim_events(10, now=after, lease_until=after + timedelta(minutes=1))
        assert again.event.id == created.event.id
        await store.mark_delivered([created.event.id])
        later = now + timedelta(hours=1)
        assert await store.claim_events(10, now=later, lease_until=later) == []
        assert (await store.outbox_stats()).pending == 0
    finally:
        await store.aclose()


async def test_store_requeues_the_parked_events_named(backend: Backend) -> None:
    """requeue_parked with ids re-queues just those; without, all the rest."""
    store = await backend.open_store()
    try:
        a, b = _created(), _created()
        await store.add(a)
        await store.add(b)
        now = utc_now()
        claimed = await store.claim_events(10, now=now, lease_until=now + timedelta(minutes=1))
        await store.mark_failed([m.event.id for m in claimed], error="down", retry_at=None)
        assert [m.event.id for m in await store.parked_events()] == [a.event.id, b.event.id]
        assert await store.requeue_parked([b.event.id, uuid7()]) == 1
        stats = await store.outbox_stats()
        assert (stats.pending, stats.parked) == (1, 1)
        (message,) = await store.claim_events(10, now=now, lease_until=now)
        assert (message.event.id, message.attempts) == (b.event.id, 0)
        assert await store.requeue_parked() == 1
        assert [e.id for e in await _events(store)] == [a.event.id, b.event.id]
    finally:
        await store.aclose()


async def test_store_keeps_a_plan_with_its_payment(backend: Backend) -> None:
    """A plan is written with its payment's creation and with each later change of it,
    installments and late fees included, and reads back exactly."""
    store = await backend.open_store()
    try:
        created = _created()
        payment = attrs.evolve(created.payment, has_plan=True)
        start = datetime(2026, 3, 2, 9, 30, 15, 123000, tzinfo=UTC)
        plan = plans.new_plan(payment.id, payment.amount, payment.currency, PlanTerms(), start)
        await store.add(attrs.evolve(created, payment=payment, plan=plan))
        assert await store.plan(payment.id) == plan
        assert (await store.get(payment.id) or payment).has_plan is True
        confirm = _changed(payment, "confirm")
        later, _, _ = plans.mark_overdue(
            plans.activate(plan, confirm.payment.updated_at),
            LateFeePolicy(first_fee=Decimal("5.00")),
            start + timedelta(days=15),
        )
        assert await store.apply(attrs.evolve(confirm, plan=later), expected=PaymentStatus.PENDING)
        assert await store.plan(payment.id) == later
        assert len(later.late_fees) == 1
        assert later.status is PlanStatus.DELINQUENT
        assert await store.plan(_created().payment.id) is None
    finally:
        await store.aclose()


async def test_store_closed_is_unavailable(backend: Backend) -> None:
    """After aclose every call raises StoreUnavailable; closing twice is fine."""
    store = await backend.open_store()
    created = _created()
    await store.add(created)
    await store.aclose()
    now = utc_now()
    calls = {
        "get": lambda: store.get(created.payment.id),
        "add": lambda: store.add(_created()),
        "apply": lambda: store.apply(
            _changed(created.payment, "confirm"), expected=PaymentStatus.PENDING
        ),
        "list_payments": lambda: store.list_payments(
            status=None, customer_id=None, limit=10, after=None
        ),
        "count": lambda: store.count(status=None, customer_id=None),
        "claim_events": lambda: store.claim_events(10, now=now, lease_until=now),
        "ping": store.ping,
    }
    answered = []
    for name, call in calls.items():
        try:
            await call()
            answered.append(name)
        except StoreUnavailable:
            pass
    assert answered == [], f"a closed store answered {answered}"
    await store.aclose()


# -- helpers -------------------------------------------------------------------


def _shared(backend: Backend) -> None:
    if not backend.shared:
        pytest.skip(f"{backend.name} cannot be opened by several processes (Backend.shared)")


async def _close(store: PaymentStore) -> None:
    await store.aclose()


async def _peek(store: PaymentStore) -> list[Any]:
    """Pending events without delivering them (the lease lapses at once)."""
    now = utc_now()
    messages = await store.claim_events(1000, now=now, lease_until=now)
    return [m.event for m in messages]


def _created(*, key: str | None = None, actor_id: str = "user-1") -> Change:
    """A new Pending payment's change, as the service would hand it to ``add``."""
    now = utc_now()
    payment = Payment(
        id=uuid7(),
        customer_id=CUSTOMER,
        amount=Decimal("1.00"),
        currency="USD",
        status=PaymentStatus.PENDING,
        created_at=now,
        updated_at=now,
        version=1,
        idempotency_key=key,
    )
    return record_change(payment, "created", from_status=None, actor_id=actor_id)


def _changed(payment: Any, action: str) -> Change:
    """``action`` applied to ``payment``, as the service would hand it to ``apply``."""
    new = transition(payment, action, at=utc_now())
    return record_change(new, action, from_status=payment.status, actor_id="admin-1")


def _refunded(payment: Any, amount: str) -> Change:
    """A refund of ``amount`` on ``payment`` (its store copy may hold less than it says)."""
    now = utc_now()
    new = refund(payment, Decimal(amount), at=now)
    operation = Operation(
        id=uuid7(),
        payment_id=payment.id,
        kind=OperationKind.REFUND,
        amount=Decimal(amount),
        currency=payment.currency,
        status=OperationStatus.SUCCEEDED,
        created_at=now,
        updated_at=now,
    )
    return record_change(
        new, "refund", from_status=payment.status, actor_id="admin-1", operation=operation
    )


def _creation_reusing_event(template: Any, event_id: Any) -> Change:
    now = utc_now()
    payment = attrs.evolve(template, id=uuid7(), created_at=now, updated_at=now)
    change = record_change(payment, "created", from_status=None, actor_id="x")
    return attrs.evolve(change, event=attrs.evolve(change.event, id=event_id))


from paymentorch.testing._contract_money import *  # noqa: E402, F403 - the money tests

__all__ = [name for name in dict(globals()) if name.startswith("test_")]

# Marked one by one rather than with a module ``pytestmark``, which ``import *`` would not
# carry into the importing module: so the suite runs under pytest-asyncio's strict mode.
for _name in __all__:
    globals()[_name] = pytest.mark.asyncio(globals()[_name])
