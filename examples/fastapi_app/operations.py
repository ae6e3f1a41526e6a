"""Operations (money movements), the processors' signed webhooks, and what the service
runs on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from examples.common import api
from examples.common.access import check_owner
from examples.common.infrastructure import describe
from examples.common.models import (
    InfrastructureResponse,
    OperationResponse,
    ProcessorEventRequest,
    ProcessorEventResponse,
    ProcessorResponse,
    ResolveRequest,
)
from examples.common.webhooks import SIGNATURE_HEADER
from examples.fastapi_app.dependencies import (
    READ_ONE,
    WRITE,
    Admin,
    CorrelationHeader,
    ExactRoute,
    OperationId,
    PaymentId,
    Reader,
    Service,
    SignedRoute,
    limited,
    problems,
    settings,
)

router = APIRouter(prefix="/api", tags=["operations"], route_class=ExactRoute)


@router.get(
    "/payments/{payment_id}/operations",
    response_model=list[OperationResponse],
    responses=READ_ONE,
)
async def operations(
    payment_id: PaymentId, svc: Service, who: Reader, _correlation: CorrelationHeader = None
) -> list[OperationResponse]:
    """The payment's money movements, oldest first."""
    check_owner(who, await svc.get_payment(payment_id))
    return [OperationResponse.of(o) for o in await svc.operations(payment_id)]


@router.get(
    "/operations/attention",
    response_model=list[OperationResponse],
    responses=problems(401, 403, 503),
)
async def needing_attention(
    svc: Service, _who: Admin, _correlation: CorrelationHeader = None
) -> list[OperationResponse]:
    """Operations whose outcome no lookup could settle: a person decides them."""
    return [OperationResponse.of(o) for o in await svc.operations_needing_attention()]


@router.post(
    "/operations/{operation_id}/resolve",
    response_model=OperationResponse,
    dependencies=[Depends(limited)],
    responses=WRITE,
)
async def resolve(
    operation_id: OperationId,
    body: ResolveRequest,
    svc: Service,
    who: Admin,
    _correlation: CorrelationHeader = None,
) -> OperationResponse:
    """Settle an operation as a person found it out; the payment moves accordingly."""
    found = await svc.resolve_operation(
        operation_id, body.outcome, actor=who.actor, reason=body.reason
    )
    return OperationResponse.of(found)


webhooks = APIRouter(prefix="/api", tags=["operations"], route_class=SignedRoute)


def known_processor(processor: str, svc: Service) -> str:
    """A processor the service routes to (404 for any other name)."""
    return api.check_sender(processor, svc.processor)


@webhooks.post(
    "/processors/{processor}/events",
    response_model=ProcessorEventResponse,
    responses=problems(401, 404, 413, 415, 422, 503),
)
async def processor_event(
    body: ProcessorEventRequest,
    sender: Annotated[str, Depends(known_processor)],
    svc: Service,
    _signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description="`t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>` under "
            "the webhook secret; no bearer token.",
        ),
    ] = None,
    _correlation: CorrelationHeader = None,
) -> ProcessorEventResponse:
    """A processor's signed callback: applied once per `eventId`; a repeat changes nothing."""
    new = await svc.record_processor_event(
        sender,
        body.event_id,
        result=body.result(),
        operation_id=body.operation_id,
        reference=body.reference,
    )
    return ProcessorEventResponse(new=new)


@router.get("/processor", response_model=ProcessorResponse, responses=problems(401, 403, 404))
async def processor_info(
    svc: Service, _who: Reader, _correlation: CorrelationHeader = None
) -> ProcessorResponse:
    """The processors money moves through (404 when payments wait for a person)."""
    return api.processor_info(svc.processor)


@router.get("/infrastructure", response_model=InfrastructureResponse, responses=problems(401, 403))
async def infrastructure(
    request: Request, svc: Service, _who: Admin, _correlation: CorrelationHeader = None
) -> InfrastructureResponse:
    """The cache, the event sink and the encryption key this service runs with."""
    return describe(settings(request), svc)
