"""Installment plans: read a payment's schedule; record an installment paid, or waive it;
charge the plan off."""

from __future__ import annotations

from flask import Blueprint, Response

import paymentorch as po
from examples.common.access import check_owner
from examples.common.models import OptionalReasonRequest, PlanResponse, ReasonRequest
from examples.flask_app.http import body_of, model_response, reader, service, writer

blueprint = Blueprint("plans", __name__, url_prefix="/api/payments/<payment_id>/plan")


def _number(number: int) -> int:
    if not 1 <= number <= 60:
        raise po.ValidationError([po.FieldError("number", "must be from 1 to 60", "range")])
    return number


@blueprint.get("")
def plan(payment_id: str) -> Response:
    who = reader()
    check_owner(who, service().get_payment(payment_id))
    return model_response(PlanResponse.of(service().plan(payment_id)))


@blueprint.post("/installments/<int:number>/pay")
def pay_installment(payment_id: str, number: int) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    found = service().pay_installment(payment_id, _number(number), actor=who.actor)
    return model_response(PlanResponse.of(found))


@blueprint.post("/installments/<int:number>/waive")
def waive_installment(payment_id: str, number: int) -> Response:
    who = writer()
    body: ReasonRequest = body_of(ReasonRequest)
    found = service().waive_installment(
        payment_id, _number(number), actor=who.actor, reason=body.reason
    )
    return model_response(PlanResponse.of(found))


@blueprint.post("/charge-off")
def charge_off(payment_id: str) -> Response:
    who = writer()
    body: ReasonRequest = body_of(ReasonRequest)
    found = service().charge_off(payment_id, actor=who.actor, reason=body.reason)
    return model_response(PlanResponse.of(found))
