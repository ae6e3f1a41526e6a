"""PaymentOrchestrator Lite on Flask, over paymentorch's blocking twin.

``PaymentOrchestrator`` is a Flask extension (``init_app``) and the API is a Blueprint.
Nothing starts at import, and nothing starts before the first request of each process:
the service and the outbox relay open lazily, so a forking server (gunicorn
``--preload``) gives every worker its own. Run it with
``flask --app examples.flask_app.main run``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import threading
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request, send_from_directory
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

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
    OperationResponse,
    OptionalReasonRequest,
    PageResponse,
    PaymentResponse,
    PlanResponse,
    ProcessorEventRequest,
    ProcessorEventResponse,
    ReasonRequest,
    RefundRequest,
    ResolveRequest,
    SummaryResponse,
)
from examples.common.observability import meter_provider, metrics_text
from examples.common.ratelimit import RateLimited, RateLimiter
from examples.common.settings import Settings, configure_logging, credit_policy


class Background:
    """The outbox relay, and the worker when there is a processor, on a daemon thread
    with an event loop and a service of their own.

    The blocking twin has no event loop; the relay and the worker are async, so they open
    the same database through the async service (on ``memory://`` nothing is shared).
    """

    def __init__(self, settings: Settings) -> None:
        # The same credit policy, cache and encryption as the app: the worker's
        # settlements release exposure and update the shared cache too.
        self._settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="paymentorch-relay", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        async def run() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            settings = self._settings
            urls = settings.processor_urls
            router = processor_from_urls(urls) if urls else None
            try:
                service = await po.open_service(
                    settings.url,
                    create_schema=False,
                    processor=router,
                    credit=credit_policy(settings),
                    **service_options(settings),
                )
            finally:
                self._ready.set()
            publisher = Publisher(settings)
            work = [po.OutboxRelay(service.store, publisher).run(self._stop)]
            if router is not None:
                work.append(po.PaymentWorker(service).run(self._stop))
            try:
                await asyncio.gather(*work)
            finally:
                await service.aclose()
                await publisher.aclose()
                if isinstance(service.cache, po.RedisCache):
                    await service.cache.aclose()
                if router is not None:
                    await close_processors(router)

        asyncio.run(run())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)  # the relay's loop, its thread
        self._thread.join()


class PaymentOrchestrator:
    """The Flask extension: settings, the service and the relay of this process."""

    def __init__(self, app: Flask | None = None, settings: Settings | None = None) -> None:
        self._given = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._service: po.SyncPaymentService | None = None
        self._relay: Background | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the API, the error handlers and the dashboard on ``app``."""
        self.settings = self._given or Settings.from_env()
        self.limiter = RateLimiter(self.settings.rate_limit)
        self.meters = meter_provider(self.settings)
        app.config["MAX_CONTENT_LENGTH"] = self.settings.max_body
        app.extensions["paymentorch"] = self
        app.register_blueprint(payments)
        app.register_blueprint(operations_api)
        app.register_blueprint(pages)
        for kind in (po.PaymentError, AuthError, RateLimited, api.HttpProblem):
            app.register_error_handler(kind, problem)
        app.register_error_handler(HTTPException, http_problem)
        app.register_error_handler(Exception, problem)
        app.before_request(correlate)
        app.teardown_request(uncorrelate)
        app.after_request(echo_correlation)
        atexit.register(self.close)

    @property
    def service(self) -> po.SyncPaymentService:
        """This process's service, opened (with its relay) on first use."""
        if self._service is None or self._pid != os.getpid():
            with self._lock:
                if self._service is None or self._pid != os.getpid():
                    urls = self.settings.processor_urls
                    self._service = po.open_sync_service(
                        self.settings.url,
                        meter_provider=self.meters,
                        create_schema=True,
                        processor=processor_from_urls(urls) if urls else None,
                        credit=credit_policy(self.settings),
                        **service_options(self.settings, blocking=True),
                    )
                    self._relay = Background(self.settings)
                    self._pid = os.getpid()
        return self._service

    def close(self) -> None:
        """Stop the relay and close the service, if this process opened them."""
        with self._lock:
            if self._pid == os.getpid():
                if self._relay is not None:
                    self._relay.stop()
                if self._service is not None:
                    self._service.close()
                    if isinstance(self._service.cache, po.SyncRedisCache):
                        self._service.cache.close()
            self._service = self._relay = None
            self._pid = None


def ext() -> PaymentOrchestrator:
    """The extension of the current app."""
    found: PaymentOrchestrator = current_app.extensions["paymentorch"]
    return found


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (problem bodies pass their own content type in ``headers``)."""
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def model_response(
    model: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response model as the API's camelCase JSON."""
    return json_response(model.model_dump(mode="json", by_alias=True), status, headers)


def problem(exc: Exception) -> Response:
    """Any error as problem+json (the last resort reveals nothing of its cause)."""
    status, body, headers = api.error_response(exc)
    return json_response(body, status, headers)


def http_problem(exc: HTTPException) -> Response:
    """Flask's own HTTP errors (404, 405 with Allow, 413...) as problem+json."""
    allowed = dict(exc.get_headers()).get("Allow")
    headers = {"Allow": allowed} if allowed else {}
    return problem(api.http_error(exc.code or 500, exc.name, headers))


def correlate() -> None:
    g.correlation_id = api.correlation_id(request.headers.get("X-Correlation-ID"))
    g.correlation = po.correlation(g.correlation_id)
    g.correlation.__enter__()


def uncorrelate(_exc: BaseException | None) -> None:
    if "correlation" in g:
        g.correlation.__exit__(None, None, None)


def echo_correlation(response: Response) -> Response:
    if "correlation_id" in g:
        response.headers["X-Correlation-ID"] = g.correlation_id
    return response


def actor() -> po.Actor:
    settings = ext().settings
    return actor_from_header(settings.jwt_secret, request.headers.get("Authorization"))


def reader() -> po.Actor:
    who = actor()
    require_reader(who)
    return who


def writer() -> po.Actor:
    who = actor()
    ext().limiter.hit(request.remote_addr or "unknown")
    return who


def body_of(model: Any, *, required: bool = True) -> Any:
    """The request body as ``model``: JSON only (415), within the size limit (413)."""
    data = request.get_data()
    api.check_content_type(request.headers.get("Content-Type"), data)
    return api.parse_body(model, data, required=required)


payments = Blueprint("payments", __name__, url_prefix="/api/payments")


@payments.get("")
def list_payments() -> Response:
    reader()
    page = ext().service.list_payments(**api.parse_list_query(request.args))
    return model_response(PageResponse.of(page))


@payments.get("/summary")
def summary() -> Response:
    reader()
    found = ext().service.summarize_payments(**api.parse_summary_query(request.args))
    return model_response(SummaryResponse.of(found))


@payments.post("")
def create_payment() -> Response:
    who = writer()
    body: CreatePaymentRequest = body_of(CreatePaymentRequest)
    payment, created = ext().service.create_or_get_payment(
        body.customer_id,
        body.amount,
        currency=body.currency,
        metadata=body.metadata,
        actor=who,
        idempotency_key=api.idempotency_key(request.headers.get("Idempotency-Key")),
        capture_method=body.capture_method,
        plan=None if body.plan is None else body.plan.terms(),
    )
    headers = {"Location": f"/api/payments/{payment.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return model_response(PaymentResponse.of(payment), 201, headers)


@payments.get("/<payment_id>")
def get_payment(payment_id: str) -> Response:
    reader()
    return model_response(PaymentResponse.of(ext().service.get_payment(payment_id)))


@payments.get("/<payment_id>/audit")
def audit_trail(payment_id: str) -> Response:
    reader()
    entries = [
        AuditEntryResponse.of(e).model_dump(mode="json", by_alias=True)
        for e in ext().service.audit_trail(payment_id)
    ]
    return json_response(entries)


@payments.post("/simulate-confirmation/<payment_id>")
@payments.post("/<payment_id>/confirm")
def confirm(payment_id: str) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    return model_response(PaymentResponse.of(ext().service.confirm_payment(payment_id, actor=who)))


@payments.post("/<payment_id>/fail")
def fail(payment_id: str) -> Response:
    who = writer()
    body: ReasonRequest = body_of(ReasonRequest)
    payment = ext().service.fail_payment(payment_id, reason=body.reason, actor=who)
    return model_response(PaymentResponse.of(payment))


@payments.post("/<payment_id>/cancel")
def cancel(payment_id: str) -> Response:
    who = writer()
    body: OptionalReasonRequest | None = body_of(OptionalReasonRequest, required=False)
    reason = None if body is None else body.reason
    payment = ext().service.cancel_payment(payment_id, actor=who, reason=reason)
    return model_response(PaymentResponse.of(payment))


@payments.post("/<payment_id>/authorize")
def authorize(payment_id: str) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    return model_response(
        PaymentResponse.of(ext().service.authorize_payment(payment_id, actor=who))
    )


@payments.post("/<payment_id>/capture")
def capture(payment_id: str) -> Response:
    who = writer()
    body: CaptureRequest | None = body_of(CaptureRequest, required=False)
    amount = None if body is None else body.amount
    payment = ext().service.capture_payment(payment_id, actor=who, amount=amount)
    return model_response(PaymentResponse.of(payment))


@payments.post("/<payment_id>/refunds")
def refund(payment_id: str) -> Response:
    who = writer()
    body: RefundRequest | None = body_of(RefundRequest, required=False)
    operation = ext().service.refund_payment(
        payment_id,
        None if body is None else body.amount,
        actor=who,
        reason=None if body is None else body.reason,
        idempotency_key=api.idempotency_key(request.headers.get("Idempotency-Key")),
    )
    return model_response(OperationResponse.of(operation), 201)


@payments.get("/<payment_id>/operations")
def operations(payment_id: str) -> Response:
    reader()
    found = ext().service.operations(payment_id)
    return json_response(
        [OperationResponse.of(o).model_dump(mode="json", by_alias=True) for o in found]
    )


operations_api = Blueprint("operations", __name__, url_prefix="/api")


@payments.get("/<payment_id>/plan")
def plan(payment_id: str) -> Response:
    reader()
    return model_response(PlanResponse.of(ext().service.plan(payment_id)))


@payments.post("/<payment_id>/plan/installments/<int:number>/pay")
def pay_installment(payment_id: str, number: int) -> Response:
    who = writer()
    body_of(OptionalReasonRequest, required=False)
    if not 1 <= number <= 60:
        raise po.ValidationError([po.FieldError("number", "must be from 1 to 60", "range")])
    plan = ext().service.pay_installment(payment_id, number, actor=who)
    return model_response(PlanResponse.of(plan))


@payments.post("/<payment_id>/plan/installments/<int:number>/waive")
def waive_installment(payment_id: str, number: int) -> Response:
    who = writer()
    body: ReasonRequest = body_of(ReasonRequest)
    if not 1 <= number <= 60:
        raise po.ValidationError([po.FieldError("number", "must be from 1 to 60", "range")])
    plan = ext().service.waive_installment(payment_id, number, actor=who, reason=body.reason)
    return model_response(PlanResponse.of(plan))


@operations_api.get("/operations/attention")
def needing_attention() -> Response:
    reader()
    found = ext().service.operations_needing_attention()
    return json_response(
        [OperationResponse.of(o).model_dump(mode="json", by_alias=True) for o in found]
    )


@operations_api.post("/operations/<operation_id>/resolve")
def resolve(operation_id: str) -> Response:
    who = writer()
    body: ResolveRequest = body_of(ResolveRequest)
    found = ext().service.resolve_operation(
        operation_id, body.outcome, actor=who, reason=body.reason
    )
    return model_response(OperationResponse.of(found))


@operations_api.post("/processors/<processor>/events")
def processor_event(processor: str) -> Response:
    who = writer()
    body: ProcessorEventRequest = body_of(ProcessorEventRequest)
    require_admin(who)
    new = ext().service.record_processor_event(
        processor,
        body.event_id,
        result=body.result(),
        operation_id=body.operation_id,
        reference=body.reference,
    )
    return model_response(ProcessorEventResponse(new=new))


@operations_api.get("/processor")
def processor_info() -> Response:
    reader()
    return model_response(api.processor_info(ext().service.processor))


@operations_api.get("/infrastructure")
def infrastructure() -> Response:
    reader()
    return model_response(describe(ext().settings, ext().service))


pages = Blueprint("pages", __name__)


@pages.get("/health/live")
def live() -> Response:
    return json_response({"status": "ok"})


@pages.get("/health/ready")
def ready() -> Response:
    status, body = api.health_response(ext().service.health())
    return json_response(body, status)


@pages.get("/metrics")
def metrics() -> Response:
    if ext().meters is None:
        raise api.HttpProblem(
            404, "not_found", "Not found", "set PAYMENTORCH_OTEL=1 to expose metrics"
        )
    body, content_type = metrics_text()
    return Response(body, content_type=content_type)


@pages.get("/dev/token")
def token() -> Response:
    settings = ext().settings
    if not settings.dev_mode:
        raise api.http_error(404, "Not found")
    return json_response(dev_token(settings.jwt_secret, request.args.get("role")))


@pages.get("/")
def dashboard() -> Response:
    return send_from_directory(STATIC, "index.html")


def create_app(settings: Settings | None = None) -> Flask:
    """The application factory: Flask, CORS and the extension; no I/O, no thread."""
    configure_logging()
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    if settings.cors_origins:
        CORS(
            app,
            origins=list(settings.cors_origins),
            expose_headers=["Location", "X-Correlation-ID", "Retry-After", "Idempotent-Replayed"],
        )
    PaymentOrchestrator(app, settings)
    return app


__all__ = ["PaymentOrchestrator", "create_app"]
