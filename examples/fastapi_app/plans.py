"""Installment plans: read a payment's schedule; record an installment paid, or waive it;
charge the plan off."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from examples.common.access import check_owner
from examples.common.models import PlanResponse, ReasonRequest
from examples.fastapi_app.dependencies import (
    READ_ONE,
    WRITE,
    Admin,
    CorrelationHeader,
    ExactRoute,
    PaymentId,
    Reader,
    Service,
    limited,
)

router = APIRouter(prefix="/api/payments/{payment_id}/plan", tags=["plans"], route_class=ExactRoute)
Number = Annotated[int, Path(ge=1, le=60, description="The installment, from 1.")]


@router.get("", response_model=PlanResponse, responses=READ_ONE)
async def plan(
    payment_id: PaymentId, svc: Service, who: Reader, _correlation: CorrelationHeader = None
) -> PlanResponse:
    """The payment's installments, their status, and late fees (422 without a plan)."""
    check_owner(who, await svc.get_payment(payment_id))
    return PlanResponse.of(await svc.plan(payment_id))


@router.post(
    "/installments/{number}/pay",
    response_model=PlanResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def pay_installment(
    payment_id: PaymentId,
    number: Number,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
) -> PlanResponse:
    """Record an installment paid by hand (a transfer, a card at a desk)."""
    return PlanResponse.of(await svc.pay_installment(payment_id, number, actor=who.actor))


@router.post(
    "/installments/{number}/waive",
    response_model=PlanResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def waive_installment(
    payment_id: PaymentId,
    number: Number,
    body: ReasonRequest,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
) -> PlanResponse:
    """Forgive an installment, with a `reason`: the customer no longer owes it."""
    plan = await svc.waive_installment(payment_id, number, actor=who.actor, reason=body.reason)
    return PlanResponse.of(plan)


@router.post(
    "/charge-off",
    response_model=PlanResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def charge_off(
    payment_id: PaymentId,
    body: ReasonRequest,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
) -> PlanResponse:
    """Give up on collecting a running plan, with a `reason`: what it still owes is
    written off and nothing more is collected (409 when it is not running). The customer
    still owes it; a payment later is a recovery."""
    plan = await svc.charge_off(payment_id, actor=who.actor, reason=body.reason)
    return PlanResponse.of(plan)
