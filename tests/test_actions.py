"""``po.allowed_actions``: what a person may do next to a payment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

import paymentorch as po
from paymentorch.domain import Operation, OperationKind, OperationStatus, Payment, plans, uuid7

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def payment(status: str = "Pending", **changes: object) -> Payment:
    made = Payment(uuid7(), "ABCD-12345", Decimal("10.00"), "USD", po.PaymentStatus(status),
                   NOW, NOW)  # fmt: skip
    return attrs.evolve(made, **changes)


def operation(of: Payment, kind: str, status: str) -> Operation:
    return Operation(uuid7(), of.id, OperationKind(kind), Decimal("10.00"), "USD",
                     OperationStatus(status), NOW, NOW)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Pending", ["authorize", "confirm", "fail", "cancel"]),
        ("Authorized", ["capture", "fail", "cancel"]),
        ("Failed", []),
        ("Cancelled", []),
        ("Refunded", []),
    ],
)
def test_each_status_offers_its_transitions(status: str, expected: list[str]) -> None:
    """With nothing in flight, a payment offers the transitions its status starts."""
    assert po.allowed_actions(payment(status)) == expected


def test_a_confirmed_payment_offers_a_refund_while_something_is_left() -> None:
    """Refund while captured money is neither refunded nor reserved by a refund under way."""
    captured = payment("Confirmed", captured_amount=Decimal("10.00"))
    assert po.allowed_actions(captured) == ["refund"]
    part = attrs.evolve(captured, refunded_amount=Decimal("4.00"), pending_refunds=Decimal("5.00"))
    assert po.allowed_actions(part) == ["refund"]
    reserved = attrs.evolve(part, pending_refunds=Decimal("6.00"))
    assert po.allowed_actions(reserved) == []


@pytest.mark.parametrize("state", ["pending", "unknown", "needs_attention"])
def test_no_status_change_while_an_operation_is_in_flight(state: str) -> None:
    """While the processor works on a payment, its answer decides: no confirm, fail..."""
    waiting = payment("Pending")
    assert po.allowed_actions(waiting, operations=[operation(waiting, "charge", state)]) == []
    held = payment("Authorized")
    assert po.allowed_actions(held, operations=[operation(held, "capture", state)]) == []
    settled = [operation(held, "authorize", "succeeded")]
    assert po.allowed_actions(held, operations=settled) == ["capture", "fail", "cancel"]


def test_a_plan_is_paid_or_waived_by_hand_unless_a_collection_is_under_way() -> None:
    """A Confirmed plan payment offers its installments; not while one is being collected,
    and a refund under way does not hide the refund button."""
    plan = payment("Confirmed", captured_amount=Decimal("10.00"), has_plan=True)
    assert po.allowed_actions(plan) == ["refund", "pay_installment", "waive_installment"]
    collecting = [operation(plan, "installment", "pending")]
    assert po.allowed_actions(plan, operations=collecting) == ["refund"]
    refunding = [operation(plan, "refund", "pending")]
    assert po.allowed_actions(plan, operations=refunding) == [
        "refund",
        "pay_installment",
        "waive_installment",
    ]
    assert po.allowed_actions(payment("Pending", has_plan=True))[:2] == ["authorize", "confirm"]


def test_given_the_plan_the_offers_follow_it() -> None:
    """With its plan, a payment offers a charge-off only while the plan runs and nothing
    of the payment is in flight; a charged-off plan takes payments (recoveries), not
    waivers; a plan with nothing unpaid offers neither. Without the plan, no charge-off."""
    order = payment("Confirmed", captured_amount=Decimal("10.00"), has_plan=True)
    running = plans.activate(plans.new_plan(order.id, order.amount, "USD", po.PlanTerms(), NOW),
                             NOW)  # fmt: skip
    everything = ["refund", "pay_installment", "waive_installment", "charge_off"]
    assert po.allowed_actions(order, plan=running) == everything
    assert "charge_off" not in po.allowed_actions(order)
    for kind in ("installment", "refund"):
        busy = [operation(order, kind, "pending")]
        assert "charge_off" not in po.allowed_actions(order, operations=busy, plan=running)
    waiting = attrs.evolve(order, pending_refunds=Decimal("1.00"))
    assert "charge_off" not in po.allowed_actions(waiting, plan=running)
    gone = plans.charge_off(running)
    assert po.allowed_actions(order, plan=gone) == ["refund", "pay_installment"]
    done = attrs.evolve(gone, installments=tuple(
        attrs.evolve(i, status=po.InstallmentStatus.PAID) for i in gone.installments
    ))  # fmt: skip
    assert po.allowed_actions(order, plan=done) == ["refund"]
    completed = attrs.evolve(done, status=po.PlanStatus.COMPLETED)
    assert po.allowed_actions(order, plan=completed) == ["refund"]
    pending = payment("Pending", has_plan=True)
    assert "charge_off" not in po.allowed_actions(pending, plan=running)


def test_resuming_collection_is_offered_only_once_it_stopped() -> None:
    """``resume_collection`` needs a running plan whose automatic collection stopped."""
    order = payment("Confirmed", captured_amount=Decimal("10.00"), has_plan=True)
    running = plans.activate(plans.new_plan(order.id, order.amount, "USD", po.PlanTerms(), NOW),
                             NOW)  # fmt: skip
    assert "resume_collection" not in po.allowed_actions(order, plan=running)
    stopped = attrs.evolve(running, collection_stopped=True)
    assert "resume_collection" in po.allowed_actions(order, plan=stopped)
    gone = plans.charge_off(stopped)
    assert "resume_collection" not in po.allowed_actions(order, plan=gone)
    assert "resume_collection" not in po.allowed_actions(order)


def test_every_audit_name_fits_its_column() -> None:
    """The audit trail keeps an action's name in 16 characters."""
    from paymentorch.domain.actions import ACTIONS

    assert max(len(a.audit) for a in ACTIONS.values()) <= 16


async def test_the_service_agrees_on_a_charge_off() -> None:
    """``charge_off`` is offered exactly when the service takes it: not while Pending,
    once the plan runs, not a second time."""
    admin = po.Actor.system()
    async with await po.open_service("memory://") as service:
        order = await service.create_payment("ABCD-12345", "100.00", actor=admin,
                                             plan=po.PlanTerms())  # fmt: skip

        async def offered_and_taken() -> bool:
            current = await service.get_payment(order.id)
            offered = "charge_off" in po.allowed_actions(current, plan=await service.plan(order.id))
            if offered:
                await service.charge_off(order.id, actor=admin, reason="past due")
            else:
                with pytest.raises(po.InvalidTransition):
                    await service.charge_off(order.id, actor=admin, reason="past due")
            return offered

        assert await offered_and_taken() is False
        await service.confirm_payment(order.id, actor=admin)
        assert await offered_and_taken() is True
        assert await offered_and_taken() is False


TRANSITIONS = ("authorize", "confirm", "capture", "fail", "cancel")


async def _reach(service: po.PaymentService, status: str) -> Payment:
    admin = po.Actor.system()
    made = await service.create_payment("ABCD-12345", "10.00", actor=admin)
    steps = {
        "Pending": [],
        "Authorized": ["authorize"],
        "Confirmed": ["confirm"],
        "Failed": ["fail"],
        "Cancelled": ["cancel"],
    }[status]
    for step in steps:
        await _do(service, step, made.id)
    return await service.get_payment(made.id)


async def _do(service: po.PaymentService, action: str, pid: object) -> None:
    admin = po.Actor.system()
    if action == "fail":
        await service.fail_payment(str(pid), reason="test", actor=admin)
    else:
        await getattr(service, f"{action}_payment")(str(pid), actor=admin)


@pytest.mark.parametrize("status", ["Pending", "Authorized", "Confirmed", "Failed", "Cancelled"])
async def test_the_service_agrees(status: str) -> None:
    """Each transition offered succeeds on the service; each one withheld is refused."""
    async with await po.open_service("memory://") as service:
        offered = po.allowed_actions(await _reach(service, status))
        for action in TRANSITIONS:
            payment = await _reach(service, status)
            if action in offered:
                await _do(service, action, payment.id)
            else:
                with pytest.raises(po.InvalidTransition):
                    await _do(service, action, payment.id)
