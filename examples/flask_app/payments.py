"""Payments: list, summarize, create and read them, with their audit trail."""

from __future__ import annotations

from flask import Blueprint, Response, request

from examples.common import api
from examples.common.access import check_creation, check_owner, customer_filter
from examples.common.models import (
    AuditEntryResponse,
    CreatePaymentRequest,
    PageResponse,
    SummaryResponse,
)
from examples.flask_app.http import (
    body_of,
    caller,
    limited,
    model_response,
    models_response,
    present,
    present_all,
    reader,
    service,
)

blueprint = Blueprint("payments", __name__, url_prefix="/api/payments")


@blueprint.get("")
def list_payments() -> Response:
    who = reader()
    query = api.parse_list_query(request.args)
    query["customer_id"] = customer_filter(who, query["customer_id"])
    page = service().list_payments(**query)
    return model_response(PageResponse.of(page, present_all(who, page.items)))


@blueprint.get("/summary")
def summary() -> Response:
    who = reader()
    query = api.parse_summary_query(request.args)
    query["customer_id"] = customer_filter(who, query["customer_id"])
    return model_response(SummaryResponse.of(service().summarize_payments(**query)))


@blueprint.post("")
def create_payment() -> Response:
    limited()
    who = caller()
    body: CreatePaymentRequest = body_of(CreatePaymentRequest)
    check_creation(who, body.customer_id)
    svc = service()
    api.check_capture_method(body.capture_method, svc.processor)
    payment, created = svc.create_or_get_payment(
        body.customer_id,
        body.amount,
        currency=body.currency,
        metadata=body.metadata,
        actor=who.actor,
        idempotency_key=api.idempotency_key(request.headers.get("Idempotency-Key")),
        capture_method=body.capture_method,
        plan=None if body.plan is None else body.plan.terms(),
    )
    headers = {"Location": f"/api/payments/{payment.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return model_response(present(who, payment), 201, headers)


@blueprint.get("/<payment_id>")
def get_payment(payment_id: str) -> Response:
    who = reader()
    return model_response(present(who, check_owner(who, service().get_payment(payment_id))))


@blueprint.get("/<payment_id>/audit")
def audit_trail(payment_id: str) -> Response:
    who = reader()
    check_owner(who, service().get_payment(payment_id))
    return models_response([AuditEntryResponse.of(e) for e in service().audit_trail(payment_id)])
