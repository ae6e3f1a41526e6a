"""Installment plans: read a payment's schedule; record an installment paid, or waive it;
charge the plan off, or resume its collection; and the book of plans as a whole (its
aging, the delinquent plans)."""

from __future__ import annotations

from flask import Blueprint, Response, request

import paymentorch as po
from examples.common import api
from examples.common.access import check_owner
from examples.common.models import (
    AgingResponse,
    DelinquentPageResponse,
    OptionalReasonRequest,
    PlanResponse,
    ReasonRequest,
)
from examples.flask_app.http import admin, body_of, model_response, reader, service, writer

blueprint = Blueprint("plans", __name__, url_prefix="/api/payments/<payment_id>/plan")
book = Blueprint("book", __name__, url_prefix="/api/plans")


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


@blueprint.post("/resume-collection")
def resume_collection(payment_id: str) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    api.idempotency_key(request.headers.get("Idempotency-Key"))
    return model_response(PlanResponse.of(service().resume_collection(payment_id, actor=who.actor)))


@book.get("/aging")
def aging() -> Response:
    admin()
    as_of = api.parse_aging_query(request.args)
    return model_response(AgingResponse.of(service().aging_report(as_of)))


@book.get("/delinquent")
def delinquent() -> Response:
    admin()
    svc = service()
    page = svc.delinquent_plans(**api.parse_delinquent_query(request.args))
    payments = [svc.get_payment(p.payment_id) for p in page.items]
    return model_response(DelinquentPageResponse.of(page, payments, svc.clock()))
