"""Moving a payment and its money: confirm, authorize, capture, fail, cancel, refund.

Every route here needs PaymentAdmin. With a processor, a capture, a void and a refund
are queued for the worker (see the FastAPI app's ``money`` module).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from examples.common import api
from examples.common.models import (
    CaptureRequest,
    OperationResponse,
    OptionalReasonRequest,
    ReasonRequest,
    RefundRequest,
)
from examples.flask_app.http import body_of, model_response, present, service, writer

blueprint = Blueprint("money", __name__, url_prefix="/api/payments")


@blueprint.post("/simulate-confirmation/<payment_id>")
@blueprint.post("/<payment_id>/confirm")
def confirm(payment_id: str) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    payment = service().confirm_payment(payment_id, actor=who.actor, idempotency_key=_key())
    return model_response(present(who, payment))


@blueprint.post("/<payment_id>/fail")
def fail(payment_id: str) -> Response:
    who = writer()
    body: ReasonRequest = body_of(ReasonRequest)
    payment = service().fail_payment(
        payment_id, reason=body.reason, actor=who.actor, idempotency_key=_key()
    )
    return model_response(present(who, payment))


@blueprint.post("/<payment_id>/cancel")
def cancel(payment_id: str) -> Response:
    who = writer()
    body: OptionalReasonRequest | None = body_of(OptionalReasonRequest, required=False)
    reason = None if body is None else body.reason
    payment = service().cancel_payment(
        payment_id, actor=who.actor, reason=reason, idempotency_key=_key()
    )
    return model_response(present(who, payment))


@blueprint.post("/<payment_id>/authorize")
def authorize(payment_id: str) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    payment = service().authorize_payment(payment_id, actor=who.actor, idempotency_key=_key())
    return model_response(present(who, payment))


@blueprint.post("/<payment_id>/capture")
def capture(payment_id: str) -> Response:
    who = writer()
    body: CaptureRequest | None = body_of(CaptureRequest, required=False)
    amount = None if body is None else body.amount
    payment = service().capture_payment(
        payment_id, actor=who.actor, amount=amount, idempotency_key=_key()
    )
    return model_response(present(who, payment))


@blueprint.post("/<payment_id>/refunds")
def refund(payment_id: str) -> Response:
    who = writer()
    body: RefundRequest | None = body_of(RefundRequest, required=False)
    operation = service().refund_payment(
        payment_id,
        None if body is None else body.amount,
        actor=who.actor,
        reason=None if body is None else body.reason,
        idempotency_key=_key(),
    )
    return model_response(OperationResponse.of(operation), 201)


def _key() -> str | None:
    """The request's ``Idempotency-Key``: a repeat with it answers as the first call did."""
    return api.idempotency_key(request.headers.get("Idempotency-Key"))
