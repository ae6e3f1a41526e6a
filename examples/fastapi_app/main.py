"""PaymentOrchestrator Lite on FastAPI: the payments API, health, metrics and a dashboard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import paymentorch as po
from examples.common import api
from examples.common.auth import AuthError, actor_from_header, require_reader
from examples.common.dashboard import STATIC, dev_token
from examples.common.events import log_events
from examples.common.observability import meter_provider, metrics_text
from examples.common.ratelimit import RateLimited, RateLimiter
from examples.common.settings import Settings, configure_logging
from paymentorch.http import PROBLEM_JSON

_BODY = {"content": {"application/json": {"schema": {"type": "object"}}}}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["customerId", "amount"],
                    "properties": {
                        "customerId": {"type": "string", "example": "ABCD-12345"},
                        "amount": {"type": ["number", "string"], "example": "125.50"},
                        "currency": {"type": "string", "example": "USD"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
}
_REASON_BODY = {"requestBody": {"required": False, **_BODY}}


def service(request: Request) -> po.PaymentService:
    """The app's service (opened in the lifespan)."""
    found: po.PaymentService = request.app.state.service
    return found


def actor(request: Request) -> po.Actor:
    """The caller, from its bearer token."""
    secret: str = request.app.state.settings.jwt_secret
    return actor_from_header(secret, request.headers.get("Authorization"))


def reader(who: Annotated[po.Actor, Depends(actor)]) -> po.Actor:
    """A caller allowed to read payments."""
    require_reader(who)
    return who


def limited(request: Request) -> None:
    """Count a write against the client's rate limit."""
    limiter: RateLimiter = request.app.state.limiter
    limiter.hit(request.client.host if request.client else "unknown")


Service = Annotated[po.PaymentService, Depends(service)]
Writer = Annotated[po.Actor, Depends(actor)]
Reader = Annotated[po.Actor, Depends(reader)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the service opens in the lifespan, so importing does no I/O."""
    configure_logging()
    settings = settings or Settings.from_env()
    meters = meter_provider(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await po.open_service(settings.url, meter_provider=meters, create_schema=True)
        stop = asyncio.Event()
        relay = asyncio.create_task(po.OutboxRelay(service.store, log_events).run(stop))
        app.state.service = service
        try:
            yield
        finally:
            stop.set()
            await relay
            await service.aclose()

    app = FastAPI(
        title="PaymentOrchestrator Lite",
        description="A BNPL payments API built on paymentorch.",
        version=po.__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-ID"],
            expose_headers=["Location", "X-Correlation-ID", "Retry-After"],
        )

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        correlation_id = api.correlation_id(request.headers.get("X-Correlation-ID"))
        with po.correlation(correlation_id):
            response = await call_next(request)
        response.headers["X-Correlation-ID"] = correlation_id
        return response

    async def problem(_request: Request, exc: Exception) -> JSONResponse:
        status, body, headers = api.error_response(exc)
        return JSONResponse(
            body, status_code=status, headers=headers, media_type=headers["Content-Type"]
        )

    async def http_problem(_request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        body = {"type": "about:blank", "title": str(getattr(exc, "detail", "")), "status": status}
        return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)

    for kind in (po.PaymentError, AuthError, RateLimited):
        app.add_exception_handler(kind, problem)
    app.add_exception_handler(StarletteHTTPException, http_problem)

    write: dict[str, Any] = {"dependencies": [Depends(limited)], "tags": ["payments"]}

    @app.get("/api/payments", tags=["payments"])
    async def list_payments(request: Request, svc: Service, _who: Reader) -> dict[str, Any]:
        """Payments, newest first: filter by `status` and `customerId`, page with `cursor`."""
        return api.page_json(await svc.list_payments(**api.parse_list_query(request.query_params)))

    @app.post("/api/payments", status_code=201, openapi_extra=_CREATE_BODY, **write)
    async def create_payment(
        request: Request, response: Response, svc: Service, who: Writer
    ) -> dict[str, Any]:
        """Create a payment; repeat safely with an `Idempotency-Key` header."""
        payment = await svc.create_payment(
            **api.parse_create(await request.body()),
            actor=who,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        response.headers["Location"] = f"/api/payments/{payment.id}"
        return api.payment_json(payment)

    @app.get("/api/payments/{payment_id}", tags=["payments"])
    async def get_payment(payment_id: str, svc: Service, _who: Reader) -> dict[str, Any]:
        """One payment."""
        return api.payment_json(await svc.get_payment(payment_id))

    @app.get("/api/payments/{payment_id}/audit", tags=["payments"])
    async def audit_trail(payment_id: str, svc: Service, _who: Reader) -> list[dict[str, Any]]:
        """Every change to the payment, oldest first."""
        return api.audit_json(await svc.audit_trail(payment_id))

    @app.post("/api/payments/simulate-confirmation/{payment_id}", **write)
    async def simulate_confirmation(payment_id: str, svc: Service, who: Writer) -> dict[str, Any]:
        """Confirm, as the processor's callback would (the seed design's path)."""
        return api.payment_json(await svc.confirm_payment(payment_id, actor=who))

    @app.post("/api/payments/{payment_id}/confirm", **write)
    async def confirm(payment_id: str, svc: Service, who: Writer) -> dict[str, Any]:
        """Pending -> Confirmed."""
        return api.payment_json(await svc.confirm_payment(payment_id, actor=who))

    @app.post("/api/payments/{payment_id}/fail", openapi_extra=_REASON_BODY, **write)
    async def fail(payment_id: str, request: Request, svc: Service, who: Writer) -> dict[str, Any]:
        """Pending -> Failed, with a `reason`."""
        reason = api.parse_reason(await request.body(), required=True)
        return api.payment_json(await svc.fail_payment(payment_id, reason=reason or "", actor=who))

    @app.post("/api/payments/{payment_id}/cancel", openapi_extra=_REASON_BODY, **write)
    async def cancel(
        payment_id: str, request: Request, svc: Service, who: Writer
    ) -> dict[str, Any]:
        """Pending -> Cancelled, with an optional `reason`."""
        reason = api.parse_reason(await request.body(), required=False)
        return api.payment_json(await svc.cancel_payment(payment_id, actor=who, reason=reason))

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready(svc: Service) -> JSONResponse:
        """The store answers: 200 when ok or degraded, 503 when down."""
        status, body = api.health_response(await svc.health())
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if meters is None:
            return JSONResponse({"detail": "set PAYMENTORCH_OTEL=1 to expose metrics"}, 404)
        body, content_type = metrics_text()
        return Response(body, media_type=content_type)

    @app.get("/dev/token", include_in_schema=False)
    async def token(role: str | None = None) -> JSONResponse:
        if not settings.dev_mode:
            return JSONResponse({"detail": "not found"}, 404)
        return JSONResponse(dev_token(settings.jwt_secret, role))

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


app = create_app()
