"""Attacks on refunds of what is left in one step, PostgreSQL's fresh plans, and a plan
refund's single plan read.

Every test asserts that money adds up exactly: the operations the callers were given,
the operations stored, ``refunded_amount``, the journal's refund entries, the audit
trail and the outbox events agree, and ``verify`` finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

import paymentorch as po
from paymentorch.clock import utc_now
from paymentorch.domain import (
    AmountExceeded,
    InvalidTransition,
    OperationKind,
    OperationStatus,
    PaymentNotFound,
    PaymentStatus,
    ValidationError,
)
from paymentorch.domain.ids import uuid7
from paymentorch.domain.plans import PlanTerms
from paymentorch.domain.transitions import Transition, transition_sources
from paymentorch.testing import Backend
from paymentorch.testing._backend import service_on
from paymentorch.testing.contract._helpers import ADMIN, CUSTOMER, USER
from paymentorch.testing.simulated import SimulatedProcessor

pytestmark = [pytest.mark.asyncio, pytest.mark.once]  # attacks on this release's paths

_REFUSED = (InvalidTransition, AmountExceeded)


# -- helpers ------------------------------------------------------------------------------


async def _confirmed(service: Any, amount: str = "100.00", currency: str = "USD") -> Any:
    payment = await service.create_payment(CUSTOMER, amount, actor=USER, currency=currency)
    return await service.confirm_payment(payment.id, actor=ADMIN)


async def _events(store: Any, pid: UUID | None) -> list[Any]:
    """Every outbox event of ``pid`` (None: of all), claimed and delivered, in order:
    the outbox is drained."""
    seen: list[Any] = []
    for _ in range(1000):
        now = utc_now() + timedelta(days=1)
        claimed = await store.claim_events(500, now=now, lease_until=now + timedelta(hours=1))
        if not claimed:
            return seen
        seen += [m.event for m in claimed if pid is None or m.event.payment_id == pid]
        await store.mark_delivered([m.event.id for m in claimed])
    raise AssertionError("the outbox never emptied")


async def _agree(
    service: Any, pid: UUID, given: Sequence[Any], drained: list[Any] | None = None
) -> Any:
    """The refunds handed to callers (``given``) are the stored ones, and the payment,
    journal, audit trail and events agree with them exactly."""
    store = service.store
    payment = await store.get(pid)
    stored = [op for op in await store.operations(pid) if op.kind is OperationKind.REFUND]
    done = [op for op in stored if op.status is OperationStatus.SUCCEEDED]
    by_id = {op.id: op for op in stored}
    for op in given:
        assert by_id.get(op.id) == op, (op, by_id.get(op.id))
    assert {op.id for op in given} <= {op.id for op in done}
    assert sum((op.amount for op in done), Decimal(0)) == payment.refunded_amount
    assert all(op.amount > 0 for op in done)
    entries = [e for e in await store.journal(pid) if e.kind == "refund"]
    assert sorted(e.operation_id for e in entries) == sorted(op.id for op in done)
    for entry in entries:
        moved = sum((line.amount for line in entry.lines if line.amount > 0), Decimal(0))
        assert moved == by_id[entry.operation_id].amount, (entry, by_id[entry.operation_id])
    trail = await store.audit_trail(pid)
    assert len([a for a in trail if a.action == "refunded"]) == len(done)
    if drained is None:
        events = await _events(store, pid)
    else:
        events = [e for e in drained if e.payment_id == pid]
    refund_events = [e for e in events if e.type == "payment.refunded"]
    assert len(refund_events) == len(done)
    for event in refund_events:
        op = by_id[UUID(event.operation["id"])]
        assert Decimal(event.operation["amount"]) == op.amount
        assert event.operation["amount"] == str(op.amount)
        assert dict(event.operation) == op.to_dict(), (event.operation, op.to_dict())
        assert event.payment["refunded_amount"] is not None
    if not payment.has_plan:  # a plan's change may publish more than one event
        assert len(events) == len(trail)
        assert dict(events[-1].payment) == payment.to_dict(), (events[-1], payment)
    report = await service.verify()
    assert report.ok, report.problems[:5]
    return payment


@contextlib.asynccontextmanager
async def _stores(backend: Backend, n: int) -> AsyncIterator[list[Any]]:
    """``n`` stores on one database (one when the backend cannot be opened twice)."""
    stores = [await backend.open_store() for _ in range(n if backend.shared else 1)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.aclose()


@contextlib.asynccontextmanager
async def _held_and_plain(
    backend: Backend,
) -> AsyncIterator[tuple[po.PaymentService, po.PaymentService]]:
    """A service whose processor holds the money and one without a processor, on the
    same database."""
    processor = SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=1)
    async with _stores(backend, 2) as stores:
        yield (
            po.PaymentService(stores[0], processor=processor, cache=None),
            po.PaymentService(stores[-1], cache=None),
        )


# -- 1. rest refunds racing partial refunds across services ----------------------------


@pytest.mark.parametrize(("currency", "amount", "parts"), [
    ("USD", "100.00", ["33.33", "0.01", "50", "17.17", "9.99"]),
    ("JPY", "1000", ["333", "1", "500"]),
    ("KWD", "10.000", ["3.333", "0.001", "5"]),
    ("CLF", "2.0000", ["0.0001", "0.3333", "1"]),
])  # fmt: skip
async def test_rest_refunds_race_partial_refunds(
    shared_backend: Backend, currency: str, amount: str, parts: list[str]
) -> None:
    """Rest refunds and partial refunds of one payment at once, through three services
    over three stores: exactly one rest refund wins, the payment ends Refunded with
    everything captured given back once, and every record agrees."""
    async with _stores(shared_backend, 3) as stores:
        services = [po.PaymentService(s, cache=po.LocalCache()) for s in stores]
        for round_ in range(5):
            payment = await _confirmed(services[0], amount, currency)
            for s in services:
                await s.get_payment(payment.id)  # every cache holds the Confirmed copy
            calls, rests = [], []
            for n in range(12):
                s = services[(n + round_) % len(services)]
                if n % 3 == round_ % 3:
                    rests.append(len(calls))
                    calls.append(s.refund_payment(payment.id, actor=ADMIN, reason="rest"))
                else:
                    part = parts[n % len(parts)]
                    calls.append(s.refund_payment(payment.id, part, actor=ADMIN, reason="p"))
            results = await asyncio.gather(*calls, return_exceptions=True)
            bad = [r for r in results if isinstance(r, BaseException)
                   and not isinstance(r, _REFUSED)]  # fmt: skip
            assert not bad, bad
            won = [r for r in results if not isinstance(r, BaseException)]
            won_rests = [results[i] for i in rests if not isinstance(results[i], BaseException)]
            # at most one rest wins (partials may have given everything back first);
            # a rest refund is refused only when nothing is left
            assert len(won_rests) <= 1, results
            lost_rests = [results[i] for i in rests if isinstance(results[i], BaseException)]
            assert all(isinstance(r, InvalidTransition) for r in lost_rests), lost_rests
            final = await _agree(services[0], payment.id, won)
            assert final.status is PaymentStatus.REFUNDED
            assert final.refunded_amount == final.captured_amount == payment.amount
            assert sum((op.amount for op in won), Decimal(0)) == payment.amount


# -- 2. rest refund while a processor holds a queued refund ---------------------------


async def test_rest_refund_leaves_a_processor_queued_refund_alone(backend: Backend) -> None:
    """A processor's service queues a refund of 30 (pending_refunds 30); a service
    without a processor on the same database refunds what is left in one step: 70,
    the payment stays Confirmed; once the processor settles its 30 it is Refunded."""
    async with _held_and_plain(backend) as (held, plain):
        payment = await held.create_payment(
            CUSTOMER, "100.00", actor=ADMIN, capture_method="automatic"
        )
        await po.PaymentWorker(held).run_once()
        payment = await held.get_payment(payment.id)
        assert (payment.status, payment.captured_amount) == (
            PaymentStatus.CONFIRMED, Decimal("100.00"),
        )  # fmt: skip
        queued = await held.refund_payment(payment.id, "30.00", actor=ADMIN)
        assert queued.status is OperationStatus.PENDING
        assert (await plain.get_payment(payment.id)).pending_refunds == Decimal("30.00")
        rest = await plain.refund_payment(payment.id, actor=ADMIN, reason="rest")
        assert (rest.amount, rest.status) == (Decimal("70.00"), OperationStatus.SUCCEEDED)
        mid = await plain.store.get(payment.id)
        assert (mid.status, mid.refunded_amount, mid.pending_refunds) == (
            PaymentStatus.CONFIRMED, Decimal("70.00"), Decimal("30.00"),
        )  # fmt: skip
        with pytest.raises(AmountExceeded):
            await plain.refund_payment(payment.id, "0.01", actor=ADMIN)
        await po.PaymentWorker(held).run_once()
        final = await held.store.get(payment.id)
        assert (final.status, final.refunded_amount, final.pending_refunds) == (
            PaymentStatus.REFUNDED, Decimal("100.00"), Decimal("0.00"),
        )  # fmt: skip
        await _agree(plain, payment.id, [rest])


async def test_rest_refund_with_only_a_queued_refund_left(backend: Backend) -> None:
    """With 70 refunded and the last 30 queued at the processor, a refund of what is
    left (nothing) is refused (AmountExceeded) and writes nothing: never a refund of
    0.00 with its audit entry and event."""
    async with _held_and_plain(backend) as (held, plain):
        payment = await held.create_payment(
            CUSTOMER, "100.00", actor=ADMIN, capture_method="automatic"
        )
        await po.PaymentWorker(held).run_once()
        await held.refund_payment(payment.id, "30.00", actor=ADMIN)
        await plain.refund_payment(payment.id, "70.00", actor=ADMIN)
        before = await _snapshot(plain, payment.id)
        with pytest.raises(_REFUSED):
            await plain.refund_payment(payment.id, actor=ADMIN)
        assert await _snapshot(plain, payment.id) == before


async def test_store_transition_rest_refund_directly(backend: Backend) -> None:
    """``store.transition`` of a refund with no amount: written with the operation it
    completed (what was left, at the currency's scale); then nothing is left, so the
    same move is only found, writing nothing."""
    async with service_on(backend, cache=None) as service:
        payment = await _confirmed(service, "12.345", "BHD")
        await service.refund_payment(payment.id, "0.345", actor=ADMIN)
        store = service.store
        move = Transition(
            payment.id, "refund", transition_sources("refund"), at=utc_now(),
            actor_id=ADMIN.id, reason="direct", operation_id=uuid7(),
        )  # fmt: skip
        stepped = await store.transition(move)
        assert stepped.written is not None
        assert stepped.operation is not None
        assert stepped.operation.id == move.operation_id
        assert str(stepped.operation.amount) == "12.000"
        assert stepped.written.status is PaymentStatus.REFUNDED
        assert stepped.written == await store.get(payment.id)
        assert stepped.operation in await store.operations(payment.id)
        again = attrs_evolve_new_ids(move)
        before = (len(await store.audit_trail(payment.id)), len(await store.journal(payment.id)))
        found = await store.transition(again)
        assert found.written is None
        assert found.operation is None
        assert found.found == await store.get(payment.id)
        after = (len(await store.audit_trail(payment.id)), len(await store.journal(payment.id)))
        assert before == after
        # the service's first refund went through the one step too: check it all
        ops = list(await store.operations(payment.id))
        await _agree(service, payment.id, ops)


def attrs_evolve_new_ids(move: Transition) -> Transition:
    import attrs

    return attrs.evolve(move, event_id=uuid7(), entry_id=uuid7(), operation_id=uuid7())


# -- 3. refusals: the same errors as the longer path, nothing written -----------------


async def _snapshot(service: Any, pid: UUID) -> tuple[Any, ...]:
    store = service.store
    return (
        await store.get(pid),
        len(await store.audit_trail(pid)),
        len(await store.journal(pid)),
        len(await store.operations(pid)),
    )


@pytest.mark.parametrize("state", ["pending", "authorized", "cancelled", "refunded", "failed"])
async def test_rest_refund_refusals_match_the_long_path(backend: Backend, state: str) -> None:
    """A rest refund of a payment that cannot refund raises what the keyed (longer) path
    raises, and writes nothing; a missing payment is PaymentNotFound either way."""
    async with service_on(backend, cache=po.LocalCache()) as service:
        with pytest.raises(PaymentNotFound):
            await service.refund_payment(uuid7(), actor=ADMIN)
        with pytest.raises(PaymentNotFound):
            await service.refund_payment(uuid7(), actor=ADMIN, idempotency_key="k-missing")
        payment = await service.create_payment(CUSTOMER, "20.00", actor=USER)
        if state == "authorized":
            await service.authorize_payment(payment.id, actor=ADMIN)
        elif state == "cancelled":
            await service.cancel_payment(payment.id, actor=ADMIN, reason="r")
        elif state == "failed":
            await service.fail_payment(payment.id, actor=ADMIN, reason="r")
        elif state == "refunded":
            await service.confirm_payment(payment.id, actor=ADMIN)
            await service.refund_payment(payment.id, actor=ADMIN)
        before = await _snapshot(service, payment.id)
        with pytest.raises((InvalidTransition, AmountExceeded, ValidationError)) as keyed:
            await service.refund_payment(payment.id, actor=ADMIN, idempotency_key="k-1")
        with pytest.raises((InvalidTransition, AmountExceeded, ValidationError)) as one_step:
            await service.refund_payment(payment.id, actor=ADMIN)
        assert type(one_step.value) is type(keyed.value)
        assert await _snapshot(service, payment.id) == before


@pytest.mark.parametrize("amount", ["0", "-1", "-0", "0E-10", "1E+400", "1E-20000",
                                    "1" * 41, "NaN", "Infinity", Decimal("1E+200000")],
                         ids=str)  # fmt: skip
async def test_bad_refund_amounts_write_nothing(backend: Backend, amount: object) -> None:
    async with service_on(backend, cache=None) as service:
        payment = await _confirmed(service, "20.00")
        before = await _snapshot(service, payment.id)
        with pytest.raises(ValidationError):
            await service.refund_payment(payment.id, amount, actor=ADMIN)
        assert await _snapshot(service, payment.id) == before
        rest = await service.refund_payment(payment.id, actor=ADMIN)
        assert rest.amount == Decimal("20.00")
        await _agree(service, payment.id, [rest])


# -- 4. currencies and part captures ------------------------------------------------------


@pytest.mark.parametrize(("currency", "total", "captured", "part", "rest"), [
    ("USD", "100.00", "40.01", "0.01", "40.00"),
    ("JPY", "1000", "999", "333", "666"),
    ("BHD", "12.345", "12.345", "0.005", "12.340"),
    ("KWD", "1.000", "0.001", None, "0.001"),
    ("CLF", "2.0000", "1.2345", "0.0001", "1.2344"),
    ("UYW", "2.0000", "1.0001", "1", "0.0001"),
    ("ISK", "100", "99", "98", "1"),
    ("IQD", "1.000", "0.999", "0.001", "0.998"),
    ("VND", "999999", "999998", "1", "999997"),
])  # fmt: skip
async def test_rest_refund_after_part_capture(
    backend: Backend, currency: str, total: str, captured: str, part: str | None, rest: str
) -> None:
    async with service_on(backend, cache=po.LocalCache()) as service:
        payment = await service.create_payment(CUSTOMER, total, actor=USER, currency=currency)
        await service.authorize_payment(payment.id, actor=ADMIN)
        await service.capture_payment(payment.id, actor=ADMIN, amount=captured)
        given = []
        if part is not None:
            given.append(await service.refund_payment(payment.id, part, actor=ADMIN))
        last = await service.refund_payment(payment.id, actor=ADMIN, reason="rest")
        given.append(last)
        assert (str(last.amount), last.currency) == (rest, currency)
        final = await _agree(service, payment.id, given)
        assert final.status is PaymentStatus.REFUNDED
        assert str(final.refunded_amount) == captured


# -- 5. fresh plans on PostgreSQL: the memo goes stale ----------------------------------


async def test_stale_fresh_plan_never_wins(shared_backend: Backend) -> None:
    """Service A creates plan payments; service B (another store) changes each first;
    A's first transition then decides on its memo of the created payment: the version
    guard must make it read again, so only B's change and what is valid after it are
    written."""
    async with _stores(shared_backend, 2) as (sa, sb):
        a = po.PaymentService(sa, cache=None)
        b = po.PaymentService(sb, cache=None)
        # B cancels; A's confirm must be refused, writing nothing
        p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        await b.cancel_payment(p.id, actor=ADMIN, reason="r")
        with pytest.raises(InvalidTransition):
            await a.confirm_payment(p.id, actor=ADMIN)
        trail = [e.action for e in await a.audit_trail(p.id)]
        assert trail == ["created", "cancelled"]
        assert await a.credit_exposure(CUSTOMER) == Decimal(0)

        # B authorizes; A captures: decided on the Authorized payment
        p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        await b.authorize_payment(p.id, actor=ADMIN)
        done = await a.capture_payment(p.id, actor=ADMIN)
        assert done.status is PaymentStatus.CONFIRMED
        assert [e.action for e in await a.audit_trail(p.id)] == ["created", "authorized",
                                                                  "captured"]  # fmt: skip

        # B confirms and is paid installment 2; A refunds what is left: 100, once
        p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        await b.confirm_payment(p.id, actor=ADMIN)
        await b.pay_installment(p.id, 2, actor=ADMIN)
        plan_before = await b.plan(p.id)
        rest = await a.refund_payment(p.id, actor=ADMIN, reason="rest")
        assert rest.amount == Decimal("100.00")
        final = await _agree(a, p.id, [rest])
        assert final.status is PaymentStatus.REFUNDED
        assert (await a.plan(p.id)) != plan_before

        # B confirms and refunds 10; A refunds what is left: 90
        p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        await b.confirm_payment(p.id, actor=ADMIN)
        ten = await b.refund_payment(p.id, "10.00", actor=ADMIN)
        rest = await a.refund_payment(p.id, actor=ADMIN)
        assert rest.amount == Decimal("90.00")
        await _agree(a, p.id, [ten, rest])

        # B confirms; A confirms (memo Pending): InvalidTransition, one confirmation only
        p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        await b.confirm_payment(p.id, actor=ADMIN)
        with pytest.raises(InvalidTransition):
            await a.confirm_payment(p.id, actor=ADMIN)
        assert [e.action for e in await a.audit_trail(p.id)] == ["created", "confirmed"]
        entries = await a.store.journal(p.id)
        assert len(entries) == 1
        report = await a.verify()
        assert report.ok, report.problems[:5]


async def test_fresh_plan_races_across_services(shared_backend: Backend) -> None:
    """Plan payments created by A, then confirmed, authorized, cancelled and captured by
    A and B at once: exactly one of confirm/authorize/cancel wins each, and the books,
    exposure and plans agree."""
    async with _stores(shared_backend, 2) as (sa, sb):
        credit = po.CreditPolicy(limit=Decimal("100000.00"), currency="USD")
        a = po.PaymentService(sa, cache=po.LocalCache(), credit=credit)
        b = po.PaymentService(sb, cache=po.LocalCache(), credit=credit)
        for round_ in range(8):
            p = await a.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
            calls = [
                a.confirm_payment(p.id, actor=ADMIN),
                b.cancel_payment(p.id, actor=ADMIN, reason="r"),
                b.confirm_payment(p.id, actor=ADMIN),
                a.cancel_payment(p.id, actor=ADMIN, reason="r"),
            ]
            if round_ % 2:
                calls.reverse()
            results = await asyncio.gather(*calls, return_exceptions=True)
            bad = [r for r in results if isinstance(r, BaseException)
                   and not isinstance(r, InvalidTransition)]  # fmt: skip
            assert not bad, results
            won = [r for r in results if not isinstance(r, BaseException)]
            assert len(won) == 1, results
            assert len(await a.audit_trail(p.id)) == 2
        report = await a.verify()
        assert report.ok, report.problems[:5]
        listed = (await a.list_payments(customer_id=CUSTOMER, limit=100)).items
        owed = sum(
            [(await a.plan(x.id)).owed for x in listed if x.status is PaymentStatus.CONFIRMED],
            Decimal(0),
        )
        assert await a.credit_exposure(CUSTOMER) == owed


@pytest.mark.postgres
async def test_fresh_plan_metadata_mutated_by_the_caller(postgres_backend: Backend) -> None:
    """A caller's metadata dict changed after create_payment never reaches the store
    through the memo: the payment and its events keep what was created."""
    async with service_on(postgres_backend, cache=None) as service:
        metadata = {"order": "1"}
        p = await service.create_payment(
            CUSTOMER, "100.00", actor=USER, plan=PlanTerms(), metadata=metadata
        )
        metadata["order"] = "evil"
        metadata["extra"] = "x"
        done = await service.confirm_payment(p.id, actor=ADMIN)
        assert dict(done.metadata) == {"order": "1"}
        stored = await service.store.get(p.id)
        assert dict(stored.metadata) == {"order": "1"}
        events = await _events(service.store, p.id)
        assert len(events) >= 2
        assert all(dict(e.payment["metadata"]) == {"order": "1"} for e in events)


@pytest.mark.postgres
async def test_fresh_plans_past_the_limit(
    postgres_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With FRESH_PLANS at 2, the oldest payments fall out of the memo and are read;
    each is confirmed exactly once, all agreeing."""
    from paymentorch.adapters.postgres import store as pg_store

    monkeypatch.setattr(pg_store, "FRESH_PLANS", 2)
    credit = po.CreditPolicy(limit=Decimal("100000.00"), currency="USD")
    async with service_on(postgres_backend, cache=None, credit=credit) as service:
        ids = [
            (await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())).id
            for _ in range(5)
        ]
        for pid in ids:
            done = await service.confirm_payment(pid, actor=ADMIN)
            assert done.status is PaymentStatus.CONFIRMED
            with pytest.raises(InvalidTransition):
                await service.confirm_payment(pid, actor=ADMIN)
        assert await service.credit_exposure(CUSTOMER) == Decimal("150.00")  # 3/4 of each owed


# -- 6. plan refunds: the plan read once --------------------------------------------------


async def test_plan_rest_refunds_racing_installments(shared_backend: Backend) -> None:
    """Pay-in-4 payments: installments paid, partial and rest refunds at once through
    two services: the plan, the payment and the books agree."""
    async with _stores(shared_backend, 2) as (sa, sb):
        credit = po.CreditPolicy(limit=Decimal("100000.00"), currency="USD")
        a = po.PaymentService(sa, cache=po.LocalCache(), credit=credit)
        b = po.PaymentService(sb, cache=po.LocalCache(), credit=credit)
        for round_ in range(4):
            p = await a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
            await a.confirm_payment(p.id, actor=ADMIN)
            calls = [
                b.pay_installment(p.id, 2, actor=ADMIN),
                a.refund_payment(p.id, "10.00", actor=ADMIN),
                b.refund_payment(p.id, actor=ADMIN, reason="rest"),
                a.pay_installment(p.id, 3, actor=ADMIN),
                a.refund_payment(p.id, actor=ADMIN, reason="rest"),
                b.refund_payment(p.id, "0.01", actor=ADMIN),
            ]
            if round_ % 2:
                calls.reverse()
            results = await asyncio.gather(*calls, return_exceptions=True)
            bad = [r for r in results if isinstance(r, BaseException)
                   and not isinstance(r, (*_REFUSED, ValidationError))]  # fmt: skip
            assert not bad, results
            given = [r for r in results if isinstance(r, po.Operation)]
            final = await _agree(a, p.id, given)
            assert final.status is PaymentStatus.REFUNDED
            assert final.refunded_amount == Decimal("100.00")
        report = await a.verify()
        assert report.ok, report.problems[:5]


# -- 8. the blocking twin, with threads ---------------------------------------------------


async def test_twin_rest_refunds_from_threads(shared_backend: Backend) -> None:
    await asyncio.to_thread(_twin_rest_refunds_from_threads, shared_backend.url)


def _twin_rest_refunds_from_threads(url: str) -> None:
    with po.open_sync_service(url) as a, po.open_sync_service(url) as b:
        for round_ in range(3):
            p = a.create_payment(CUSTOMER, "100.00", actor=USER)
            p = a.confirm_payment(p.id, actor=ADMIN)
            barrier = threading.Barrier(8)

            def call(
                n: int, barrier: threading.Barrier = barrier, round_: int = round_, p: Any = p
            ) -> Any:
                s = (a, b)[n % 2]
                barrier.wait()
                try:
                    if n % 4 == round_ % 4:
                        return ("rest", s.refund_payment(p.id, actor=ADMIN))
                    return ("part", s.refund_payment(p.id, f"{n + 1}.11", actor=ADMIN))
                except BaseException as exc:
                    return ("error", exc)

            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(call, range(8)))
            errors = [r for k, r in results if k == "error"]
            assert all(isinstance(e, _REFUSED) for e in errors), errors
            rests = [r for k, r in results if k == "rest"]
            given = [r for k, r in results if k != "error"]
            assert len(rests) <= 1, results
            final = a.store.get(p.id) if hasattr(a, "store") else a.get_payment(p.id)
            assert final.status is PaymentStatus.REFUNDED
            assert final.refunded_amount == Decimal("100.00")
            stored = {op.id: op for op in a.operations(p.id)}
            for op in given:
                assert stored[op.id] == op
            assert sum((op.amount for op in stored.values()), Decimal(0)) == Decimal("100.00")
            refunds = [e for e in a.store.journal(p.id) if e.kind == "refund"]
            assert sorted(e.operation_id for e in refunds) == sorted(stored)
        report = a.verify()
        assert report.ok, report.problems[:5]


# -- 9. store-level rest refunds racing, no service in between ---------------------------


async def test_store_rest_refunds_race_at_the_store(shared_backend: Backend) -> None:
    """Many ``transition`` rest refunds and refunds of an amount at once through several
    stores: the store locks what is left, so exactly the written moves' operations add up
    to what was captured, each written one says what it gave back, the others are only
    found, and the books agree."""
    async with (
        _stores(shared_backend, 4) as stores,
        service_on(shared_backend, cache=None) as service,
    ):
        for round_ in range(4):
            payment = await _confirmed(service, "100.00")
            moves = []
            for n in range(16):
                amount = None if n % 4 == round_ % 4 else Decimal(f"{n % 5 + 1}.25")
                moves.append(Transition(
                    payment.id, "refund", transition_sources("refund"), at=utc_now(),
                    actor_id=ADMIN.id, amount=amount, operation_id=uuid7(),
                ))  # fmt: skip
            results = await asyncio.gather(
                *(stores[n % len(stores)].transition(m) for n, m in enumerate(moves))
            )
            written = [r for r in results if r.written is not None]
            assert all(r.operation is not None for r in written)
            assert all(r.found is not None for r in results if r.written is None)
            ops = [r.operation for r in written]
            assert [op.id for op in ops] == [
                m.operation_id for m, r in zip(moves, results, strict=True) if r.written
            ]
            for m, r in zip(moves, results, strict=True):
                if r.written is not None and m.amount is not None:
                    assert r.operation.amount == m.amount
            final = await service.store.get(payment.id)
            assert final.status is PaymentStatus.REFUNDED
            assert sum((op.amount for op in ops), Decimal(0)) == Decimal("100.00")
            assert len([m for m, r in zip(moves, results, strict=True)
                        if r.written and m.amount is None]) <= 1  # fmt: skip
            await _agree(service, payment.id, ops)


# -- 10. the memo after this store's own keyed write --------------------------------------


async def test_fresh_plan_after_a_keyed_write_by_the_same_store(shared_backend: Backend) -> None:
    """A keyed authorize goes the longer way (``apply``), leaving the store's memo of the
    created payment behind; the next transition decides on that memo: its guard must make
    it read, so cancel, fail and capture act on the Authorized payment, once."""
    credit = po.CreditPolicy(limit=Decimal("100000.00"), currency="USD")
    async with service_on(shared_backend, cache=None, credit=credit) as service:
        for action in ("cancel", "fail", "capture", "confirm"):
            p = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
            await service.authorize_payment(p.id, actor=ADMIN, idempotency_key=f"k-{action}")
            if action == "cancel":
                done = await service.cancel_payment(p.id, actor=ADMIN, reason="r")
                assert done.status is PaymentStatus.CANCELLED
            elif action == "fail":
                done = await service.fail_payment(p.id, actor=ADMIN, reason="r")
                assert done.status is PaymentStatus.FAILED
            elif action == "capture":
                done = await service.capture_payment(p.id, actor=ADMIN)
                assert done.status is PaymentStatus.CONFIRMED
            else:
                with pytest.raises(InvalidTransition):
                    await service.confirm_payment(p.id, actor=ADMIN)
            trail = [(e.from_status, e.to_status) for e in await service.audit_trail(p.id)]
            assert trail[1] == (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED), trail
            assert len(trail) == (2 if action == "confirm" else 3), trail
            if len(trail) == 3:
                assert trail[2][0] is PaymentStatus.AUTHORIZED
        assert await service.credit_exposure(CUSTOMER) == Decimal("70.00")  # 40 + 30


# -- 11. the blocking twin: fresh plans across two twins ----------------------------------


async def test_twin_fresh_plans_across_twins(shared_backend: Backend) -> None:
    await asyncio.to_thread(_twin_fresh_plans, shared_backend.url)


def _twin_fresh_plans(url: str) -> None:
    with po.open_sync_service(url) as a, po.open_sync_service(url) as b:
        p = a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        b.cancel_payment(p.id, actor=ADMIN, reason="r")
        with pytest.raises(InvalidTransition):
            a.confirm_payment(p.id, actor=ADMIN)
        assert [e.action for e in a.audit_trail(p.id)] == ["created", "cancelled"]
        q = a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        b.confirm_payment(q.id, actor=ADMIN)
        b.refund_payment(q.id, "10.00", actor=ADMIN)
        rest = a.refund_payment(q.id, actor=ADMIN)
        assert rest.amount == Decimal("90.00")
        assert rest in a.operations(q.id)
        final = a.get_payment(q.id)
        assert (final.status, final.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("100"))
        # threads racing rest refunds on one plan payment
        r = a.create_payment(CUSTOMER, "100.00", actor=USER, plan=PlanTerms())
        a.confirm_payment(r.id, actor=ADMIN)
        barrier = threading.Barrier(6)

        def call(n: int) -> Any:
            barrier.wait()
            try:
                s = (a, b)[n % 2]
                return s.refund_payment(r.id, None if n % 3 == 0 else "7.00", actor=ADMIN)
            except BaseException as exc:
                return exc

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(call, range(6)))
        bad = [x for x in results if isinstance(x, BaseException)
               and not isinstance(x, (*_REFUSED, ValidationError))]  # fmt: skip
        assert not bad, results
        given = [x for x in results if isinstance(x, po.Operation)]
        stored = {op.id: op for op in a.operations(r.id) if op.kind is OperationKind.REFUND}
        assert {op.id for op in given} == set(stored)
        for op in given:
            assert stored[op.id] == op
        final = a.get_payment(r.id)
        assert final.refunded_amount == sum((op.amount for op in given), Decimal(0))
        assert final.status is PaymentStatus.REFUNDED
        report = a.verify()
        assert report.ok, report.problems[:5]


# -- 12. a third-party store that does not say which refund it completed ------------------


async def test_a_store_that_does_not_say_has_its_refund_read_back(backend: Backend) -> None:
    """A store written before ``Stepped.operation`` returns only the payment: the
    service reads the refund back, the same one the store wrote, for a rest refund
    and a refund of an amount."""
    from paymentorch.domain.transitions import Stepped

    inner = await backend.open_store()

    class Quiet:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        async def transition(self, move: Transition) -> Stepped:
            stepped = await inner.transition(move)
            return Stepped(written=stepped.written, found=stepped.found, plan=stepped.plan)

    service = po.PaymentService(Quiet(), cache=None)  # type: ignore[arg-type]
    try:
        payment = await _confirmed(service, "10.000", "BHD")
        part = await service.refund_payment(payment.id, "1.5", actor=ADMIN, reason="p")
        rest = await service.refund_payment(payment.id, actor=ADMIN, reason="rest")
        assert (str(part.amount), str(rest.amount)) == ("1.500", "8.500")
        assert (part.reason, rest.reason) == ("p", "rest")
        await _agree(service, payment.id, [part, rest])
    finally:
        await inner.aclose()


async def test_twin_and_service_give_the_same_rest_refund(shared_backend: Backend) -> None:
    """The blocking twin's rest refund records what the async service's does: the same
    amounts, statuses and records for the same sequence."""
    url = shared_backend.url

    def twin_side() -> list[tuple[str, str]]:
        with po.open_sync_service(url) as twin:
            p = twin.create_payment(CUSTOMER, "1000", actor=USER, currency="JPY")
            twin.authorize_payment(p.id, actor=ADMIN)
            twin.capture_payment(p.id, actor=ADMIN, amount="777")
            a = twin.refund_payment(p.id, "7", actor=ADMIN)
            b = twin.refund_payment(p.id, actor=ADMIN)
            with pytest.raises(InvalidTransition):
                twin.refund_payment(p.id, actor=ADMIN)
            final = twin.get_payment(p.id)
            return [(str(a.amount), a.status.value), (str(b.amount), b.status.value),
                    (str(final.refunded_amount), final.status.value)]  # fmt: skip

    twin_answer = await asyncio.to_thread(twin_side)
    async with await po.open_service(url) as service:
        p = await service.create_payment(CUSTOMER, "1000", actor=USER, currency="JPY")
        await service.authorize_payment(p.id, actor=ADMIN)
        await service.capture_payment(p.id, actor=ADMIN, amount="777")
        a = await service.refund_payment(p.id, "7", actor=ADMIN)
        b = await service.refund_payment(p.id, actor=ADMIN)
        with pytest.raises(InvalidTransition):
            await service.refund_payment(p.id, actor=ADMIN)
        final = await service.get_payment(p.id)
        answer = [(str(a.amount), a.status.value), (str(b.amount), b.status.value),
                  (str(final.refunded_amount), final.status.value)]  # fmt: skip
        await _agree(service, p.id, [a, b])
    assert twin_answer == answer == [("7", "succeeded"), ("770", "succeeded"),
                                     ("777", "Refunded")]  # fmt: skip


# -- 13. the memo is what a read would have found ------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(("currency", "amount", "terms", "metadata"), [
    ("USD", "100.00", PlanTerms(), None),
    ("USD", "100.01", PlanTerms(installments=3, remainder="last"), {"k": "v", "ü": "é"}),
    ("JPY", "1001", PlanTerms(installments=12, interval=timedelta(days=30)), None),
    ("KWD", "10.001", PlanTerms(installments=2, refund_allocation="even"), {"a": ""}),
    ("CLF", "1.0003", PlanTerms(installments=3), None),
])  # fmt: skip
async def test_fresh_plan_memo_equals_a_read(
    postgres_backend: Backend, currency: str, amount: str, terms: PlanTerms, metadata: Any
) -> None:
    """The payment and plan the store keeps as written are exactly what ``get_with_plan``
    reads, and a confirmation decided on them leaves the same plan as one decided on a
    read (the memo spent first by a refused refund)."""
    async with service_on(postgres_backend, cache=None) as service:
        store = service.store
        memo_side = await service.create_payment(
            CUSTOMER, amount, actor=USER, currency=currency, plan=terms, metadata=metadata
        )
        read_side = await service.create_payment(
            CUSTOMER, amount, actor=USER, currency=currency, plan=terms, metadata=metadata
        )
        memo = store._fresh.get(memo_side.id)
        assert memo is not None
        assert memo == await store.get_with_plan(memo_side.id)
        with pytest.raises(InvalidTransition):  # spends read_side's memo
            await service.refund_payment(read_side.id, actor=ADMIN)
        assert store._fresh.get(read_side.id) is None
        a = await service.confirm_payment(memo_side.id, actor=ADMIN)
        b = await service.confirm_payment(read_side.id, actor=ADMIN)
        assert (a.version, a.status, a.captured_amount) == (b.version, b.status, b.captured_amount)
        pa, pb = await service.plan(memo_side.id), await service.plan(read_side.id)
        strip = lambda plan: [  # noqa: E731
            (i.number, i.amount, i.status, i.paid_amount if hasattr(i, "paid_amount") else None)
            for i in plan.installments
        ]
        assert strip(pa) == strip(pb)
        assert pa.owed == pb.owed
        events = await _events(store, None)
        ea = [e.type for e in events if e.payment_id == memo_side.id]
        eb = [e.type for e in events if e.payment_id == read_side.id]
        assert ea == eb
        assert len(ea) >= 3


# -- 14. the memo after writes that are not transitions ------------------------------------


async def test_fresh_plan_after_a_bulk_confirm_by_the_same_store(shared_backend: Backend) -> None:
    """``confirm_payments`` writes through ``apply_many``, leaving the memo Pending: the
    next confirm or cancel decided on it must be refused after a read, writing nothing."""
    async with service_on(shared_backend, cache=None) as service:
        p = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
        q = await service.create_payment(CUSTOMER, "40.00", actor=USER, plan=PlanTerms())
        bulk = await service.confirm_payments([p.id, q.id], actor=ADMIN)
        assert len(bulk.confirmed) == 2
        with pytest.raises(InvalidTransition):
            await service.confirm_payment(p.id, actor=ADMIN)
        with pytest.raises(InvalidTransition):
            await service.cancel_payment(q.id, actor=ADMIN, reason="r")
        for pid in (p.id, q.id):
            assert [e.action for e in await service.audit_trail(pid)] == ["created", "confirmed"]
            assert len(await service.store.journal(pid)) == 1


@pytest.mark.parametrize("purger", ["same", "another"])
async def test_fresh_plan_after_its_key_was_purged(shared_backend: Backend, purger: str) -> None:
    """Purging idempotency keys changes a payment without a new version, through this
    store or another; a confirmation afterwards answers the payment as stored (key
    None), not the key it was created with."""
    from paymentorch.clock import ManualClock

    clock = ManualClock(utc_now())
    async with (
        service_on(shared_backend, cache=None, clock=clock) as service,
        service_on(shared_backend, cache=None, clock=clock) as other,
    ):
        p = await service.create_payment(
            CUSTOMER, "40.00", actor=USER, plan=PlanTerms(), idempotency_key="order-77"
        )
        assert p.idempotency_key == "order-77"
        clock.advance(timedelta(days=2))  # the key's retention is over
        by = service if purger == "same" else other
        assert await by.purge_idempotency_keys(older_than=timedelta(days=1)) >= 1
        assert (await service.store.get(p.id)).idempotency_key is None
        done = await service.confirm_payment(p.id, actor=ADMIN)
        stored = await service.store.get(p.id)
        events = await _events(service.store, p.id)
        (confirmed,) = [e for e in events if e.type == "payment.confirmed"]
        assert confirmed.payment["idempotency_key"] is None, confirmed.payment
        assert done == stored, (done.idempotency_key, stored.idempotency_key)


# -- 15. one-step rest refunds racing refunds queued at a processor -----------------------


async def test_rest_refunds_race_processor_queued_refunds(shared_backend: Backend) -> None:
    """A service with a processor queues refunds while services without one refund what
    is left in one step, at once: never more than captured is refunded or held, and
    once the processor settles, the books agree."""
    processor = SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=2)
    async with _stores(shared_backend, 3) as stores:
        held = po.PaymentService(stores[0], processor=processor, cache=po.LocalCache())
        plains = [po.PaymentService(s, cache=po.LocalCache()) for s in stores[1:]]
        zeros: list[Any] = []
        for round_ in range(4):
            payment = await held.create_payment(
                CUSTOMER, "100.00", actor=ADMIN, capture_method="automatic"
            )
            await po.PaymentWorker(held).run_once()
            for s in (held, *plains):
                await s.get_payment(payment.id)
            calls = [
                held.refund_payment(payment.id, "30.00", actor=ADMIN),
                plains[0].refund_payment(payment.id, actor=ADMIN),
                held.refund_payment(payment.id, "20.00", actor=ADMIN),
                plains[-1].refund_payment(payment.id, "10.00", actor=ADMIN),
                plains[-1].refund_payment(payment.id, actor=ADMIN),
                held.refund_payment(payment.id, actor=ADMIN),
            ]
            if round_ % 2:
                calls.reverse()
            results = await asyncio.gather(*calls, return_exceptions=True)
            bad = [r for r in results if isinstance(r, BaseException)
                   and not isinstance(r, _REFUSED)]  # fmt: skip
            assert not bad, results
            mid = await held.store.get(payment.id)
            assert mid.refunded_amount + mid.pending_refunds <= mid.captured_amount
            given = [r for r in results if isinstance(r, po.Operation)]
            # a refund of what is left, with nothing left, is never a 0.00 refund
            zeros += [(op.status.value, op.processor, str(op.amount))
                      for op in given if op.amount <= 0]  # fmt: skip
            for _ in range(5):
                await po.PaymentWorker(held).run_once()
            final = await held.store.get(payment.id)
            assert final.pending_refunds == 0
            stored = {op.id: op for op in await held.store.operations(payment.id)}
            refunds = [op for op in stored.values() if op.kind is OperationKind.REFUND]
            assert {op.id for op in given} <= set(stored)
            done = sum((op.amount for op in refunds
                        if op.status is OperationStatus.SUCCEEDED), Decimal(0))  # fmt: skip
            assert done == final.refunded_amount
            assert final.status is (PaymentStatus.REFUNDED if done == final.captured_amount
                                    else PaymentStatus.CONFIRMED)  # fmt: skip
        report = await held.verify()
        assert report.ok, report.problems[:5]
        assert zeros == []


# -- 16. two OS processes -----------------------------------------------------------------


def _child_refunds(
    url: str, ids: list[str], parts: list[str | None], barrier: Any, out: Any
) -> None:
    """In a child process: refund each payment, each of ``parts`` in turn (None: what is
    left); send back what was given and what was refused."""

    async def run() -> list[tuple[str, str, str]]:
        done: list[tuple[str, str, str]] = []
        async with await po.open_service(url) as service:
            await asyncio.to_thread(barrier.wait)
            for pid in ids:
                for part in parts:
                    try:
                        op = await service.refund_payment(pid, part, actor=ADMIN)
                        done.append((pid, str(op.id), str(op.amount)))
                    except (InvalidTransition, AmountExceeded) as exc:
                        done.append((pid, "refused", type(exc).__name__))
        return done

    try:
        out.put(asyncio.run(run()))
    except BaseException as exc:
        out.put(repr(exc))


async def test_rest_refunds_from_two_processes(shared_backend: Backend) -> None:
    import multiprocessing

    url = shared_backend.url
    ctx = multiprocessing.get_context("spawn")
    async with service_on(shared_backend, cache=None) as service:
        ids = [str((await _confirmed(service, "50.00")).id) for _ in range(15)]
        barrier, out = ctx.Barrier(2), ctx.Queue()
        children = [
            ctx.Process(
                target=_child_refunds, args=(url, ids, ["7.00", None, "1.00"], barrier, out)
            ),
            ctx.Process(target=_child_refunds, args=(url, ids, [None, "3.00", None], barrier, out)),
        ]
        for c in children:
            c.start()
        answers = [await asyncio.to_thread(out.get, True, 120) for _ in children]
        for c in children:
            await asyncio.to_thread(c.join, 60)
            assert c.exitcode == 0
        assert all(isinstance(a, list) for a in answers), answers
        given = [g for a in answers for g in a if g[1] != "refused"]
        drained = await _events(service.store, None)
        for pid in ids:
            mine = [g for g in given if g[0] == pid]
            final = await service.store.get(UUID(pid))
            assert final.status is PaymentStatus.REFUNDED, (pid, mine)
            assert sum((Decimal(g[2]) for g in mine), Decimal(0)) == Decimal("50.00"), mine
            ops = {str(op.id): op for op in await service.store.operations(UUID(pid))}
            assert {g[1] for g in mine} == set(ops)
            assert all(str(ops[g[1]].amount) == g[2] for g in mine)
            await _agree(service, UUID(pid), list(ops.values()), drained)


# -- 17. reasons the database cannot hold -------------------------------------------------


@pytest.mark.parametrize("reason", ["nul\x00byte", "x" * 100_000, "\ud800", "  "], ids=repr)
async def test_rest_refund_reason_the_database_cannot_hold(backend: Backend, reason: str) -> None:
    """A reason PostgreSQL cannot store (NUL, a lone surrogate) or too long is refused
    before the one step, as a domain error (never a driver exception), writing nothing;
    or, when accepted, stored exactly."""
    async with service_on(backend, cache=None) as service:
        payment = await _confirmed(service, "20.00")
        before = await _snapshot(service, payment.id)
        try:
            op = await service.refund_payment(payment.id, actor=ADMIN, reason=reason)
        except ValidationError:
            assert await _snapshot(service, payment.id) == before
            with pytest.raises(ValidationError):
                await service.refund_payment(payment.id, "1", actor=ADMIN, reason=reason)
        else:
            stored = {o.id: o for o in await service.operations(payment.id)}
            assert stored[op.id] == op
            await _agree(service, payment.id, [op])


# -- 18. amounts beyond the 28-digit decimal context ---------------------------------------


@pytest.mark.parametrize("total", ["1E+25", "9999999999999999999999999.99"])
async def test_rest_refund_beyond_28_digits(backend: Backend, total: str) -> None:
    """Under a policy allowing 10^27 USD, 0.01 refunded and then what is left, at the
    28 digits the context holds: the rest is exactly total - 0.01 and the refunds add up
    to what was captured, on every store. A payment of 10^26 (29 digits in USD) is
    refused at creation with a ValidationError."""
    if backend.name == "sqlite":
        pytest.skip("SQLite's integrity sums stop at 64-bit integers of 10^-4 units")
    policy = po.ValidationPolicy(max_amount=Decimal("1E+27"))
    async with service_on(backend, cache=None, validation=policy) as service:
        with pytest.raises(ValidationError, match="28 digits"):
            await service.create_payment(CUSTOMER, "1E+26", actor=ADMIN)
        payment = await _confirmed(service, total)
        cent = await service.refund_payment(payment.id, "0.01", actor=ADMIN)
        rest = await service.refund_payment(payment.id, actor=ADMIN)
        captured = (await service.store.get(payment.id)).captured_amount
        assert captured == Decimal(total)
        assert rest.amount + cent.amount == captured, (rest.amount, cent.amount, captured)
        final = await _agree(service, payment.id, [cent, rest])
        assert final.refunded_amount == captured
        assert final.status is PaymentStatus.REFUNDED
