"""Payments: list, summarize, create and read them, with their audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from examples.common import api
from examples.common.access import check_creation, check_owner, customer_filter
from examples.common.models import (
    AuditEntryResponse,
    CreatePaymentRequest,
    PageResponse,
    PaymentResponse,
    Status,
    SummaryResponse,
)
from examples.fastapi_app.dependencies import (
    READ,
    READ_ONE,
    WRITE,
    Caller,
    CorrelationHeader,
    CreatedFrom,
    CreatedTo,
    CustomerQuery,
    ExactRoute,
    PaymentId,
    Reader,
    Service,
    known_query,
    limited,
    present,
    present_all,
)

router = APIRouter(prefix="/api/payments", tags=["payments"], route_class=ExactRoute)


@router.get(
    "",
    response_model=PageResponse,
    dependencies=[Depends(known_query(api.LIST_QUERY))],
    responses=READ,
)
async def list_payments(
    *,
    svc: Service,
    who: Reader,
    _correlation: CorrelationHeader = None,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    customer_id: CustomerQuery = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`nextCursor` of the page before.")
    ] = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> PageResponse:
    """Payments, newest first, filtered and paged with an opaque cursor."""
    page = await svc.list_payments(
        status=status,
        customer_id=customer_filter(who, customer_id),
        limit=limit,
        cursor=cursor,
        created_from=created_from,
        created_to=created_to,
    )
    return PageResponse.of(page, await present_all(svc, who, page.items))


@router.get(
    "/summary",
    response_model=SummaryResponse,
    dependencies=[Depends(known_query(api.SUMMARY_QUERY))],
    responses=READ,
)
async def summary(
    svc: Service,
    who: Reader,
    _correlation: CorrelationHeader = None,
    customer_id: CustomerQuery = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> SummaryResponse:
    """Counts by status, exact totals by currency and counts by day created."""
    found = await svc.summarize_payments(
        customer_id=customer_filter(who, customer_id),
        created_from=created_from,
        created_to=created_to,
    )
    return SummaryResponse.of(found)


@router.post(
    "",
    status_code=201,
    response_model=PaymentResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def create_payment(
    body: CreatePaymentRequest,
    response: Response,
    svc: Service,
    who: Caller,
    _correlation: CorrelationHeader = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="Makes a retry safe: the same key and body return the same "
            "payment, answered with `Idempotent-Replayed: true`.",
        ),
    ] = None,
) -> PaymentResponse:
    """Create a Pending payment (a PaymentUser, only for its own customer)."""
    check_creation(who, body.customer_id)
    api.check_capture_method(body.capture_method, svc.processor)
    payment, created = await svc.create_or_get_payment(
        body.customer_id,
        body.amount,
        currency=body.currency,
        metadata=body.metadata,
        actor=who.actor,
        idempotency_key=api.idempotency_key(idempotency_key),
        capture_method=body.capture_method,
        plan=None if body.plan is None else body.plan.terms(),
    )
    response.headers["Location"] = f"/api/payments/{payment.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return await present(svc, who, payment)


@router.get("/{payment_id}", response_model=PaymentResponse, responses=READ_ONE)
async def get_payment(
    payment_id: PaymentId, svc: Service, who: Reader, _correlation: CorrelationHeader = None
) -> PaymentResponse:
    """One payment, with what the caller may do next."""
    payment = check_owner(who, await svc.get_payment(payment_id))
    return await present(svc, who, payment)


@router.get("/{payment_id}/audit", response_model=list[AuditEntryResponse], responses=READ_ONE)
async def audit_trail(
    payment_id: PaymentId, svc: Service, who: Reader, _correlation: CorrelationHeader = None
) -> list[AuditEntryResponse]:
    """Every change to the payment, oldest first."""
    check_owner(who, await svc.get_payment(payment_id))
    return [AuditEntryResponse.of(e) for e in await svc.audit_trail(payment_id)]
