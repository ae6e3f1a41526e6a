"""PaymentOrchestrator Lite on FastAPI: the payments API, health, metrics and a dashboard.

Run it with ``uvicorn --factory examples.fastapi_app.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import paymentorch as po
from examples.common import api
from examples.common.auth import AuthError, actor_from_header, require_admin, require_reader
from examples.common.dashboard import STATIC, dev_token
from examples.common.http_processor import close_processors, processor_from_urls
from examples.common.infrastructure import Publisher, describe, service_options
from examples.common.models import (
    AuditEntryResponse,
    CaptureRequest,
    CreatePaymentRequest,
    InfrastructureResponse,
    OperationResponse,
    OptionalReasonRequest,
    PageResponse,
    PaymentResponse,
    PlanResponse,
    Problem,
    ProcessorEventRequest,
    ProcessorEventResponse,
    ProcessorResponse,
    ReasonRequest,
    RefundRequest,
    ResolveRequest,
    Status,
    SummaryResponse,
)
from examples.common.observability import meter_provider, metrics_text
from examples.common.ratelimit import RateLimited, RateLimiter
from examples.common.settings import Settings, configure_logging, credit_policy

# Swagger UI and ReDoc from an installed package: many networks reach no CDN.
DOCS_ASSETS = importlib.resources.files("fastapi_offline") / "static"


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: each status a problem+json body."""
    described = {
        401: "No valid bearer token",
        403: "The caller's role does not allow it",
        404: "No such payment",
        409: "The payment's status does not allow it, or the key was used otherwise",
        413: "The body is larger than the limit",
        415: "The body is not JSON",
        422: "The request broke a rule; `errors` lists every one",
        429: "Too many requests; see Retry-After",
        503: "The store cannot be reached",
    }
    return {
        status: {
            "description": described[status],
            "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
        }
        for status in statuses
    }


READ = _problems(401, 403, 422, 503)
WRITE = _problems(401, 403, 404, 409, 413, 415, 422, 429, 503)


class ExactRequest(Request):
    """A request whose body is capped before it is read whole, and whose JSON is exact."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit: int = self.app.state.settings.max_body
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise api.http_error(413, "Payload too large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    raise api.http_error(413, "Payload too large")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = api.read_json(body)
            except po.ValidationError as exc:  # FastAPI turns this into a 422 on "body"
                message = exc.errors[0].message
                raise json.JSONDecodeError(message, body.decode(errors="replace"), 0) from None
        return self._json


class ExactRoute(APIRoute):
    """Routes that read bodies through ``ExactRequest`` and refuse non-JSON bodies (415)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            exact = ExactRequest(request.scope, request.receive)
            if request.method in {"POST", "PUT", "PATCH"}:
                api.check_content_type(exact.headers.get("content-type"), await exact.body())
            return await handler(exact)

        return route


bearer = HTTPBearer(auto_error=False, description="A token from `python -m examples.token`.")


def service(request: Request) -> po.PaymentService:
    """The app's service (opened in the lifespan)."""
    found: po.PaymentService = request.app.state.service
    return found


def actor(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> po.Actor:
    """The caller, from its bearer token."""
    secret: str = request.app.state.settings.jwt_secret
    header = None if credentials is None else f"Bearer {credentials.credentials}"
    return actor_from_header(secret, header)


def reader(who: Annotated[po.Actor, Depends(actor)]) -> po.Actor:
    """A caller allowed to read payments."""
    require_reader(who)
    return who


def known_query(known: set[str]) -> Callable[[Request], None]:
    """A dependency refusing query parameters the route does not know."""

    def check(request: Request) -> None:
        if errors := api.check_query(request.query_params.keys(), known):
            raise po.ValidationError(errors)

    return check


def limited(request: Request) -> None:
    """Count a write against the client's rate limit."""
    limiter: RateLimiter = request.app.state.limiter
    limiter.hit(request.client.host if request.client else "unknown")


Service = Annotated[po.PaymentService, Depends(service)]
Writer = Annotated[po.Actor, Depends(actor)]
Reader = Annotated[po.Actor, Depends(reader)]
CreatedFrom = Annotated[
    datetime | None,
    Query(alias="createdFrom", description="Created at or after (ISO 8601, with a zone)."),
]
CreatedTo = Annotated[
    datetime | None,
    Query(alias="createdTo", description="Created before (ISO 8601, with a zone)."),
]
CorrelationHeader = Annotated[
    str | None,
    Header(
        alias="X-Correlation-ID",
        description="Tags the audit entries and events; echoed back, or made up.",
    ),
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the service opens in the lifespan, so building it does no I/O."""
    configure_logging()
    settings = settings or Settings.from_env()
    meters = meter_provider(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        router = processor_from_urls(settings.processor_urls) if settings.processor_urls else None
        service = await po.open_service(
            settings.url,
            meter_provider=meters,
            create_schema=True,
            processor=router,
            credit=credit_policy(settings),
            **service_options(settings),
        )
        stop = asyncio.Event()
        publisher = Publisher(settings)
        background = [asyncio.create_task(po.OutboxRelay(service.store, publisher).run(stop))]
        if router is not None:  # the worker beside the relay: the processor's answers land
            background.append(asyncio.create_task(po.PaymentWorker(service).run(stop)))
        app.state.service = service
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*background)
            await service.aclose()
            await publisher.aclose()
            if isinstance(service.cache, po.RedisCache):
                await service.cache.aclose()
            if router is not None:
                await close_processors(router)

    app = FastAPI(
        title="PaymentOrchestrator Lite",
        description="A BNPL payments API built on paymentorch. Amounts are exact decimal "
        "strings; every error is an RFC 9457 problem.",
        version=po.__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = ExactRoute
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-ID"],
            expose_headers=["Location", "X-Correlation-ID", "Retry-After", "Idempotent-Replayed"],
        )

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        correlation_id = api.correlation_id(request.headers.get("X-Correlation-ID"))
        with po.correlation(correlation_id):
            try:
                response = await call_next(request)
            except Exception as exc:  # the last resort: a problem, never a stack trace
                status, body, headers = api.error_response(exc)
                response = JSONResponse(body, status, headers, media_type=headers["Content-Type"])
        response.headers["X-Correlation-ID"] = correlation_id
        return response

    def problem_response(exc: Exception) -> JSONResponse:
        status, body, headers = api.error_response(exc)
        return JSONResponse(body, status, headers, media_type=headers["Content-Type"])

    async def problem(_request: Request, exc: Exception) -> JSONResponse:
        return problem_response(exc)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):
            raise exc
        return problem_response(po.ValidationError(api.field_errors(exc.errors())))

    async def http_problem(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):
            raise exc
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of one route; list them all
            allowed = {
                method
                for route in request.app.router.routes
                if route.matches(request.scope)[0] is Match.PARTIAL
                for method in getattr(route, "methods", None) or ()
            }
            headers["Allow"] = ", ".join(sorted(allowed))
        return problem_response(api.http_error(exc.status_code, str(exc.detail), headers))

    for kind in (po.PaymentError, AuthError, RateLimited, api.HttpProblem):
        app.add_exception_handler(kind, problem)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_problem)

    write: dict[str, Any] = {
        "dependencies": [Depends(limited)],
        "tags": ["payments"],
        "responses": WRITE,
    }
    read: dict[str, Any] = {"tags": ["payments"], "responses": READ}

    @app.get(
        "/api/payments",
        response_model=PageResponse,
        dependencies=[Depends(known_query(api.LIST_QUERY))],
        **read,
    )
    async def list_payments(
        *,
        svc: Service,
        _who: Reader,
        _correlation: CorrelationHeader = None,
        status: Annotated[Status | None, Query(description="Only this status.")] = None,
        customer_id: Annotated[
            str | None, Query(alias="customerId", max_length=100, description="Only this payer.")
        ] = None,
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
            customer_id=customer_id,
            limit=limit,
            cursor=cursor,
            created_from=created_from,
            created_to=created_to,
        )
        return PageResponse.of(page)

    @app.get(
        "/api/payments/summary",
        response_model=SummaryResponse,
        dependencies=[Depends(known_query(api.SUMMARY_QUERY))],
        **read,
    )
    async def summary(
        svc: Service,
        _who: Reader,
        _correlation: CorrelationHeader = None,
        customer_id: Annotated[
            str | None, Query(alias="customerId", max_length=100, description="Only this payer.")
        ] = None,
        created_from: CreatedFrom = None,
        created_to: CreatedTo = None,
    ) -> SummaryResponse:
        """Counts by status, exact totals by currency and counts by day created."""
        found = await svc.summarize_payments(
            customer_id=customer_id, created_from=created_from, created_to=created_to
        )
        return SummaryResponse.of(found)

    @app.post("/api/payments", status_code=201, response_model=PaymentResponse, **write)
    async def create_payment(
        body: CreatePaymentRequest,
        response: Response,
        svc: Service,
        who: Writer,
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
        """Create a Pending payment."""
        payment, created = await svc.create_or_get_payment(
            body.customer_id,
            body.amount,
            currency=body.currency,
            metadata=body.metadata,
            actor=who,
            idempotency_key=api.idempotency_key(idempotency_key),
            capture_method=body.capture_method,
            plan=None if body.plan is None else body.plan.terms(),
        )
        response.headers["Location"] = f"/api/payments/{payment.id}"
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return PaymentResponse.of(payment)

    @app.get(
        "/api/payments/{payment_id}",
        response_model=PaymentResponse,
        **{**read, "responses": _problems(401, 403, 404, 422, 503)},
    )
    async def get_payment(
        payment_id: str, svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> PaymentResponse:
        """One payment."""
        return PaymentResponse.of(await svc.get_payment(payment_id))

    @app.get(
        "/api/payments/{payment_id}/audit",
        response_model=list[AuditEntryResponse],
        **{**read, "responses": _problems(401, 403, 404, 422, 503)},
    )
    async def audit_trail(
        payment_id: str, svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> list[AuditEntryResponse]:
        """Every change to the payment, oldest first."""
        return [AuditEntryResponse.of(e) for e in await svc.audit_trail(payment_id)]

    @app.post(
        "/api/payments/simulate-confirmation/{payment_id}", response_model=PaymentResponse, **write
    )  # the seed design's path: confirm, as the processor's callback would
    @app.post("/api/payments/{payment_id}/confirm", response_model=PaymentResponse, **write)
    async def confirm(
        payment_id: str, svc: Service, who: Writer, _correlation: CorrelationHeader = None
    ) -> PaymentResponse:
        """Pending -> Confirmed, capturing the whole amount."""
        return PaymentResponse.of(await svc.confirm_payment(payment_id, actor=who))

    @app.post("/api/payments/{payment_id}/fail", response_model=PaymentResponse, **write)
    async def fail(
        payment_id: str,
        body: ReasonRequest,
        svc: Service,
        who: Writer,
        _correlation: CorrelationHeader = None,
    ) -> PaymentResponse:
        """Pending or Authorized -> Failed, with a `reason`."""
        payment = await svc.fail_payment(payment_id, reason=body.reason, actor=who)
        return PaymentResponse.of(payment)

    @app.post("/api/payments/{payment_id}/cancel", response_model=PaymentResponse, **write)
    async def cancel(
        payment_id: str,
        svc: Service,
        who: Writer,
        body: OptionalReasonRequest | None = None,
        _correlation: CorrelationHeader = None,
    ) -> PaymentResponse:
        """Pending or Authorized (a void) -> Cancelled, with an optional `reason`."""
        reason = None if body is None else body.reason
        return PaymentResponse.of(await svc.cancel_payment(payment_id, actor=who, reason=reason))

    @app.post("/api/payments/{payment_id}/authorize", response_model=PaymentResponse, **write)
    async def authorize(
        payment_id: str, svc: Service, who: Writer, _correlation: CorrelationHeader = None
    ) -> PaymentResponse:
        """Pending -> Authorized: hold the money, capture it later."""
        return PaymentResponse.of(await svc.authorize_payment(payment_id, actor=who))

    @app.post("/api/payments/{payment_id}/capture", response_model=PaymentResponse, **write)
    async def capture(
        payment_id: str,
        svc: Service,
        who: Writer,
        body: CaptureRequest | None = None,
        _correlation: CorrelationHeader = None,
    ) -> PaymentResponse:
        """Authorized -> Confirmed, taking `amount` (all of it when left out)."""
        amount = None if body is None else body.amount
        return PaymentResponse.of(await svc.capture_payment(payment_id, actor=who, amount=amount))

    @app.post(
        "/api/payments/{payment_id}/refunds",
        status_code=201,
        response_model=OperationResponse,
        **write,
    )
    async def refund(
        payment_id: str,
        svc: Service,
        who: Writer,
        body: RefundRequest | None = None,
        _correlation: CorrelationHeader = None,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=255,
                description="Makes a retry safe: the same key returns the same refund.",
            ),
        ] = None,
    ) -> OperationResponse:
        """Refund part or all of what was captured; Refunded once everything is."""
        operation = await svc.refund_payment(
            payment_id,
            None if body is None else body.amount,
            actor=who,
            reason=None if body is None else body.reason,
            idempotency_key=api.idempotency_key(idempotency_key),
        )
        return OperationResponse.of(operation)

    @app.get(
        "/api/payments/{payment_id}/operations",
        response_model=list[OperationResponse],
        **{**read, "responses": _problems(401, 403, 404, 422, 503)},
    )
    async def operations(
        payment_id: str, svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> list[OperationResponse]:
        """The payment's money movements, oldest first."""
        return [OperationResponse.of(o) for o in await svc.operations(payment_id)]

    @app.get(
        "/api/payments/{payment_id}/plan",
        response_model=PlanResponse,
        **{**read, "responses": _problems(401, 403, 404, 422, 503)},
    )
    async def plan(
        payment_id: str, svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> PlanResponse:
        """The payment's installments, their status, and late fees (422 without a plan)."""
        return PlanResponse.of(await svc.plan(payment_id))

    @app.post(
        "/api/payments/{payment_id}/plan/installments/{number}/pay",
        response_model=PlanResponse,
        **write,
    )
    async def pay_installment(
        payment_id: str,
        number: Annotated[int, Path(ge=1, le=60)],
        svc: Service,
        who: Writer,
        _correlation: CorrelationHeader = None,
    ) -> PlanResponse:
        """Record an installment paid by hand (a transfer, a card at a desk)."""
        return PlanResponse.of(await svc.pay_installment(payment_id, number, actor=who))

    @app.post(
        "/api/payments/{payment_id}/plan/installments/{number}/waive",
        response_model=PlanResponse,
        **write,
    )
    async def waive_installment(
        payment_id: str,
        number: Annotated[int, Path(ge=1, le=60)],
        body: ReasonRequest,
        svc: Service,
        who: Writer,
        _correlation: CorrelationHeader = None,
    ) -> PlanResponse:
        """Forgive an installment, with a `reason`: the customer no longer owes it."""
        plan = await svc.waive_installment(payment_id, number, actor=who, reason=body.reason)
        return PlanResponse.of(plan)

    @app.get(
        "/api/operations/attention",
        response_model=list[OperationResponse],
        **{**read, "responses": _problems(401, 403, 503)},
    )
    async def needing_attention(
        svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> list[OperationResponse]:
        """Operations whose outcome no lookup could settle: a person decides them."""
        return [OperationResponse.of(o) for o in await svc.operations_needing_attention()]

    @app.post("/api/operations/{operation_id}/resolve", response_model=OperationResponse, **write)
    async def resolve(
        operation_id: str,
        body: ResolveRequest,
        svc: Service,
        who: Writer,
        _correlation: CorrelationHeader = None,
    ) -> OperationResponse:
        """Settle an operation as a person found it out; the payment moves accordingly."""
        found = await svc.resolve_operation(
            operation_id, body.outcome, actor=who, reason=body.reason
        )
        return OperationResponse.of(found)

    @app.post("/api/processors/{processor}/events", response_model=ProcessorEventResponse, **write)
    async def processor_event(
        processor: str,
        body: ProcessorEventRequest,
        svc: Service,
        who: Writer,
        _correlation: CorrelationHeader = None,
    ) -> ProcessorEventResponse:
        """A processor's callback: applied once per `eventId`; a repeat changes nothing."""
        require_admin(who)
        new = await svc.record_processor_event(
            processor,
            body.event_id,
            result=body.result(),
            operation_id=body.operation_id,
            reference=body.reference,
        )
        return ProcessorEventResponse(new=new)

    @app.get(
        "/api/processor",
        response_model=ProcessorResponse,
        **{**read, "responses": _problems(401, 403, 404)},
    )
    async def processor_info(
        svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> ProcessorResponse:
        """The processors money moves through (404 when payments wait for a person)."""
        return api.processor_info(svc.processor)

    @app.get(
        "/api/infrastructure",
        response_model=InfrastructureResponse,
        **{**read, "responses": _problems(401, 403)},
    )
    async def infrastructure(
        svc: Service, _who: Reader, _correlation: CorrelationHeader = None
    ) -> InfrastructureResponse:
        """The cache, the event sink and the encryption key this service runs with."""
        return describe(app.state.settings, svc)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/health/ready",
        tags=["health"],
        responses={503: {"description": "The store is down"}},
    )
    async def ready(svc: Service) -> JSONResponse:
        """The store answers: 200 when ok or degraded, 503 when down."""
        status, body = api.health_response(await svc.health())
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if meters is None:
            raise api.HttpProblem(
                404, "not_found", "Not found", "set PAYMENTORCH_OTEL=1 to expose metrics"
            )
        body, content_type = metrics_text()
        return Response(body, media_type=content_type)

    @app.get("/dev/token", include_in_schema=False)
    async def token(role: str | None = None) -> JSONResponse:
        if not settings.dev_mode:
            raise api.http_error(404, "Not found")
        return JSONResponse(dev_token(settings.jwt_secret, role))

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    return app
