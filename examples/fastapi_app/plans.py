"""Installment plans: read a payment's schedule; record an installment paid, or waive it;
charge the plan off, or resume its collection; and the book of plans as a whole (its
aging, the delinquent plans)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BeforeValidator

from examples.common import api
from examples.common.access import check_owner
from examples.common.models import (
    AgingResponse,
    DelinquentPageResponse,
    PlanResponse,
    ReasonRequest,
)
from examples.fastapi_app.dependencies import (
    READ,
    READ_ONE,
    WRITE,
    Admin,
    CorrelationHeader,
    ExactRoute,
    KeyHeader,
    PaymentId,
    Reader,
    Service,
    iso,
    known_query,
    limited,
)
from paymentorch.domain.validation import MAX_PAGE

router = APIRouter(prefix="/api/payments/{payment_id}/plan", tags=["plans"], route_class=ExactRoute)
book = APIRouter(prefix="/api/plans", tags=["plans"], route_class=ExactRoute)
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


@router.post(
    "/resume-collection",
    response_model=PlanResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def resume_collection(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
    key: KeyHeader = None,
) -> PlanResponse:
    """Collect the plan automatically again after a hard decline or the retries ran out
    (`collectionStopped`); its next collection goes at the worker's next tick."""
    api.idempotency_key(key)
    return PlanResponse.of(await svc.resume_collection(payment_id, actor=who.actor))


AsOf = Annotated[
    datetime | None,
    BeforeValidator(iso),
    Query(alias="asOf", description="Measure today's plans at this time (ISO 8601, with a zone)."),
]


@book.get(
    "/aging",
    response_model=AgingResponse,
    dependencies=[Depends(known_query(api.AGING_QUERY))],
    responses=READ,
)
async def aging(
    svc: Service, _who: Admin, _correlation: CorrelationHeader = None, as_of: AsOf = None
) -> AgingResponse:
    """Running plans by days past due (`current`, `1-29`, `30-59`, `60-89`, `90+`): how
    many, and their unpaid installments per currency; unpaid late fees apart."""
    return AgingResponse.of(await svc.aging_report(as_of))


@book.get(
    "/delinquent",
    response_model=DelinquentPageResponse,
    dependencies=[Depends(known_query(api.DELINQUENT_QUERY))],
    responses=READ,
)
async def delinquent(
    *,
    svc: Service,
    _who: Admin,
    _correlation: CorrelationHeader = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`nextCursor` of the page before.")
    ] = None,
) -> DelinquentPageResponse:
    """Plans at least a day past due, most days first: each with its days past due and
    its oldest unpaid installment's collection (attempts, last decline, next attempt)."""
    page = await svc.delinquent_plans(limit, cursor)
    payments = await asyncio.gather(*(svc.get_payment(p.payment_id) for p in page.items))
    return DelinquentPageResponse.of(page, payments, svc.clock())
