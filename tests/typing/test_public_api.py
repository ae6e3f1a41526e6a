"""The public API as a type checker sees it; mypy --strict runs over this file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import assert_type
from uuid import UUID

import paymentorch as po
from paymentorch import errors, testing
from paymentorch.adapters import InMemoryPaymentStore, LocalCache, open_store
from paymentorch.clock import ManualClock
from paymentorch.http import problem_details, retry_after
from paymentorch.ports import OutboxStats
from paymentorch.sync import SyncLocalCache, SyncPaymentStore
from paymentorch.sync.adapters import SyncInMemoryPaymentStore


async def _sink(events: Sequence[po.PaymentEvent]) -> None:
    for event in events:
        assert_type(event.id, UUID)


async def test_async_api_types() -> None:
    """Every public async call has the types the docs promise."""
    service = await po.open_service("memory://", cache=None, default_currency="EUR")
    assert_type(service, po.PaymentService)
    async with service:
        user = po.Actor("u-17", roles={po.Role.USER})
        admin = po.Actor("ops-3", roles={po.Role.ADMIN})
        p = await service.create_payment(
            "ABCD-12345",
            Decimal("125.50"),
            actor=user,
            currency="USD",
            idempotency_key="order-981",
            metadata={"order_id": "981"},
        )
        assert_type(p, po.Payment)
        assert_type(p.amount, Decimal)
        assert_type(p.status, po.PaymentStatus)
        p = await service.confirm_payment(p.id, actor=admin, idempotency_key="confirm-981")
        allowed = po.allowed_actions(p, operations=await service.operations(p.id))
        assert_type(allowed, list[str])
        order = await service.create_payment("ABCD-12345", "40.00", actor=user, currency="USD",
                                             plan=po.PlanTerms())  # fmt: skip
        order = await service.confirm_payment(order.id, actor=admin)
        assert_type(po.allowed_actions(order, plan=await service.plan(order.id)), list[str])
        charged_off = await service.charge_off(order.id, actor=admin, reason="past due")
        assert_type(charged_off, po.Plan)
        assert charged_off.status is po.PlanStatus.CHARGED_OFF
        page = await service.list_payments(status=po.PaymentStatus.CONFIRMED, limit=10)
        assert_type(page, po.Page)
        assert_type(page.next_cursor, str | None)
        assert_type(await service.count_payments(), int)
        result = await service.confirm_payments([p.id], actor=admin)
        assert_type(result.skipped, dict[UUID, str])
        created = await service.create_payments([po.NewPayment("ABCD-12345", "9.99")], actor=admin)
        assert_type(created, list[po.Payment])
        trail = await service.audit_trail(p.id)
        assert_type(trail, list[po.AuditEntry])
        report = await service.health()
        assert_type(report, po.HealthReport)
        assert_type(await service.purge_idempotency_keys(timedelta(days=2)), int)
        relay = po.OutboxRelay(service.store, _sink)
        assert_type(await relay.run_once(), int)
        bus = po.InMemoryEventBus()
        bus.subscribe("payment.*", lambda event: None)
        status, body = problem_details(po.PaymentNotFound(p.id))
        assert_type(status, int)
        assert body["status"] == 404
        unavailable = po.StoreUnavailable("pool exhausted: 2 waiting", limit="max_waiting")
        assert_type(unavailable.limit, str | None)
        assert_type(retry_after(unavailable), int | None)


def test_sync_api_types() -> None:
    """The sync twin mirrors the async service."""
    with po.open_sync_service("memory://") as service:
        assert_type(service, po.SyncPaymentService)
        payment = service.create_payment("ABCD-12345", "1.00", actor=po.Actor.system())
        assert_type(payment, po.Payment)
        assert_type(service.get_payment(payment.id), po.Payment)
        with po.correlation("req-1"):
            cancelled = service.cancel_payment(
                payment.id, actor=po.Actor.system(), idempotency_key="cancel-1"
            )
            assert_type(cancelled, po.Payment)
        order = service.create_payment("ABCD-12345", "40.00", actor=po.Actor.system(),
                                       plan=po.PlanTerms())  # fmt: skip
        service.confirm_payment(order.id, actor=po.Actor.system())
        plan = service.charge_off(order.id, actor=po.Actor.system(), reason="past due")
        assert_type(plan, po.Plan)


async def test_homes_of_the_moved_names() -> None:
    """Stores, the twin's adapters, the clock and the errors keep their types where they
    live now."""
    store = await open_store("memory://")
    assert_type(store, po.PaymentStore)
    memory = InMemoryPaymentStore()
    assert_type(memory, InMemoryPaymentStore)
    assert_type(await memory.outbox_stats(), OutboxStats)
    assert_type(LocalCache(), po.LocalCache)
    blocking = SyncInMemoryPaymentStore()
    assert_type(blocking.get_many([]), dict[UUID, po.Payment])
    sync_store: SyncPaymentStore = blocking
    clock = ManualClock()
    with po.open_sync_service("memory://", cache=SyncLocalCache(), clock=clock) as service:
        assert_type(service.store, SyncPaymentStore)
    assert_type(errors.PaymentNotFound, type[po.PaymentNotFound])
    assert_type(testing.SimulatedProcessor(), testing.SimulatedProcessor)
    await store.aclose()
    sync_store.close()
