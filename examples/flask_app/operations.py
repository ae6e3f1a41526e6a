"""Operations (money movements), the processors' signed webhooks, and what the service
runs on."""

from __future__ import annotations

from flask import Blueprint, Response

from examples.common import api
from examples.common.access import check_owner
from examples.common.infrastructure import describe
from examples.common.models import (
    OperationResponse,
    ProcessorEventRequest,
    ProcessorEventResponse,
    ResolveRequest,
)
from examples.flask_app.http import (
    admin,
    body_of,
    ext,
    model_response,
    models_response,
    reader,
    service,
    signed_body,
    writer,
)

blueprint = Blueprint("operations", __name__, url_prefix="/api")


@blueprint.get("/payments/<payment_id>/operations")
def operations(payment_id: str) -> Response:
    who = reader()
    check_owner(who, service().get_payment(payment_id))
    return models_response([OperationResponse.of(o) for o in service().operations(payment_id)])


@blueprint.get("/operations/attention")
def needing_attention() -> Response:
    admin()
    found = service().operations_needing_attention()
    return models_response([OperationResponse.of(o) for o in found])


@blueprint.post("/operations/<operation_id>/resolve")
def resolve(operation_id: str) -> Response:
    who = writer()
    body: ResolveRequest = body_of(ResolveRequest)
    found = service().resolve_operation(
        operation_id, body.outcome, actor=who.actor, reason=body.reason
    )
    return model_response(OperationResponse.of(found))


@blueprint.post("/processors/<processor>/events")
def processor_event(processor: str) -> Response:
    signed_body()
    body: ProcessorEventRequest = body_of(ProcessorEventRequest)
    svc = service()
    new = svc.record_processor_event(
        api.check_sender(processor, svc.processor),
        body.event_id,
        result=body.result(),
        operation_id=body.operation_id,
        reference=body.reference,
    )
    return model_response(ProcessorEventResponse(new=new))


@blueprint.get("/processor")
def processor_info() -> Response:
    reader()
    return model_response(api.processor_info(service().processor))


@blueprint.get("/infrastructure")
def infrastructure() -> Response:
    admin()
    return model_response(describe(ext().settings, service()))
