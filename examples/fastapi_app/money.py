"""Moving a payment and its money: confirm, authorize, capture, fail, cancel, refund.

Every route here needs PaymentAdmin. With a processor, a capture, a void (a cancel of an
Authorized payment) and a refund are queued for the worker: the payment answered is
unchanged (a refund's operation is ``pending``) until the processor's answer lands.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from examples.common import api
from examples.common.models import (
    CaptureRequest,
    OperationResponse,
    OptionalReasonRequest,
    PaymentResponse,
    ReasonRequest,
    RefundRequest,
)
from examples.fastapi_app.dependencies import (
    WRITE,
    Admin,
    CorrelationHeader,
    ExactRoute,
    KeyHeader,
    PaymentId,
    Service,
    limited,
    present,
)

router = APIRouter(
    prefix="/api/payments",
    tags=["money"],
    route_class=ExactRoute,
    dependencies=[Depends(limited)],
    responses=WRITE,
)


# The seed design's path: confirm, as the processor's callback would.
@router.post("/simulate-confirmation/{payment_id}", response_model=PaymentResponse)
@router.post("/{payment_id}/confirm", response_model=PaymentResponse)
async def confirm(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> PaymentResponse:
    """Pending -> Confirmed, capturing the whole amount."""
    key = api.idempotency_key(idempotency_key)
    payment = await svc.confirm_payment(payment_id, actor=who.actor, idempotency_key=key)
    return await present(svc, who, payment)


@router.post("/{payment_id}/fail", response_model=PaymentResponse)
async def fail(
    payment_id: PaymentId,
    body: ReasonRequest,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> PaymentResponse:
    """Pending or Authorized -> Failed, with a `reason`."""
    key = api.idempotency_key(idempotency_key)
    payment = await svc.fail_payment(
        payment_id, reason=body.reason, actor=who.actor, idempotency_key=key
    )
    return await present(svc, who, payment)


@router.post("/{payment_id}/cancel", response_model=PaymentResponse)
async def cancel(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    body: OptionalReasonRequest | None = None,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> PaymentResponse:
    """Pending -> Cancelled, or Authorized -> Cancelled (a void: queued when a processor
    holds the money), with an optional `reason`."""
    reason = None if body is None else body.reason
    key = api.idempotency_key(idempotency_key)
    payment = await svc.cancel_payment(
        payment_id, actor=who.actor, reason=reason, idempotency_key=key
    )
    return await present(svc, who, payment)


@router.post("/{payment_id}/authorize", response_model=PaymentResponse)
async def authorize(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> PaymentResponse:
    """Pending -> Authorized: hold the money, capture it later."""
    key = api.idempotency_key(idempotency_key)
    payment = await svc.authorize_payment(payment_id, actor=who.actor, idempotency_key=key)
    return await present(svc, who, payment)


@router.post("/{payment_id}/capture", response_model=PaymentResponse)
async def capture(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    body: CaptureRequest | None = None,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> PaymentResponse:
    """Authorized -> Confirmed, taking `amount` (all of it when left out); queued when a
    processor holds the money."""
    amount = None if body is None else body.amount
    key = api.idempotency_key(idempotency_key)
    payment = await svc.capture_payment(
        payment_id, actor=who.actor, amount=amount, idempotency_key=key
    )
    return await present(svc, who, payment)


@router.post("/{payment_id}/refunds", status_code=201, response_model=OperationResponse)
async def refund(
    payment_id: PaymentId,
    svc: Service,
    who: Admin,
    body: RefundRequest | None = None,
    _correlation: CorrelationHeader = None,
    idempotency_key: KeyHeader = None,
) -> OperationResponse:
    """Refund part or all of what was captured; Refunded once everything is. The
    operation is `pending` while a processor carries it out."""
    operation = await svc.refund_payment(
        payment_id,
        None if body is None else body.amount,
        actor=who.actor,
        reason=None if body is None else body.reason,
        idempotency_key=api.idempotency_key(idempotency_key),
    )
    return OperationResponse.of(operation)
