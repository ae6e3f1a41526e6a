"""PaymentOrchestrator Lite on Flask, over paymentorch's blocking twin."""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
from typing import Any

from flask import Flask, Response, g, request, send_from_directory
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

import paymentorch as po
from examples.common import api
from examples.common.auth import AuthError, actor_from_header, require_reader
from examples.common.dashboard import STATIC, dev_token
from examples.common.events import log_events
from examples.common.observability import meter_provider, metrics_text
from examples.common.ratelimit import RateLimited, RateLimiter
from examples.common.settings import Settings, configure_logging
from paymentorch.http import PROBLEM_JSON


class Relay:
    """The outbox relay on a daemon thread, with an event loop and a store of its own.

    The blocking twin has no event loop; the relay is async, so it opens the same
    database through the async store (on ``memory://`` there is nothing to share).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="paymentorch-relay", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        async def run() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                store = await po.open_store(self._url, create_schema=False)
            finally:
                self._ready.set()
            try:
                await po.OutboxRelay(store, log_events).run(self._stop)
            finally:
                await store.aclose()

        asyncio.run(run())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)  # the relay's loop, its thread
        self._thread.join()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (problem bodies pass their own content type in ``headers``)."""
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app, open the service and start the relay."""
    configure_logging()
    settings = settings or Settings.from_env()
    limiter = RateLimiter(settings.rate_limit)
    meters = meter_provider(settings)
    service = po.open_sync_service(settings.url, meter_provider=meters, create_schema=True)
    relay = Relay(settings.url)

    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.extensions["paymentorch"] = service
    if settings.cors_origins:
        CORS(
            app,
            origins=list(settings.cors_origins),
            expose_headers=["Location", "X-Correlation-ID", "Retry-After"],
        )

    closed = threading.Event()

    def close() -> None:
        if not closed.is_set():
            closed.set()
            relay.stop()
            service.close()

    app.extensions["paymentorch.close"] = close
    atexit.register(close)

    @app.before_request
    def correlate() -> None:
        g.correlation_id = api.correlation_id(request.headers.get("X-Correlation-ID"))
        g.correlation = po.correlation(g.correlation_id)
        g.correlation.__enter__()

    @app.teardown_request
    def uncorrelate(_exc: BaseException | None) -> None:
        if "correlation" in g:
            g.correlation.__exit__(None, None, None)

    @app.after_request
    def echo_correlation(response: Response) -> Response:
        if "correlation_id" in g:
            response.headers["X-Correlation-ID"] = g.correlation_id
        return response

    @app.errorhandler(po.PaymentError)
    @app.errorhandler(AuthError)
    @app.errorhandler(RateLimited)
    def problem(exc: Exception) -> Response:
        status, body, headers = api.error_response(exc)
        return json_response(body, status, headers)

    @app.errorhandler(HTTPException)
    def http_problem(exc: HTTPException) -> Response:
        body = {"type": "about:blank", "title": exc.name, "status": exc.code}
        return json_response(body, exc.code or 500, {"Content-Type": PROBLEM_JSON})

    def actor() -> po.Actor:
        return actor_from_header(settings.jwt_secret, request.headers.get("Authorization"))

    def reader() -> po.Actor:
        who = actor()
        require_reader(who)
        return who

    def writer() -> po.Actor:
        who = actor()
        limiter.hit(request.remote_addr or "unknown")
        return who

    @app.get("/api/payments")
    def list_payments() -> Response:
        reader()
        page = service.list_payments(**api.parse_list_query(request.args))
        return json_response(api.page_json(page))

    @app.post("/api/payments")
    def create_payment() -> Response:
        who = writer()
        payment = service.create_payment(
            **api.parse_create(request.get_data()),
            actor=who,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return json_response(
            api.payment_json(payment), 201, {"Location": f"/api/payments/{payment.id}"}
        )

    @app.get("/api/payments/<payment_id>")
    def get_payment(payment_id: str) -> Response:
        reader()
        return json_response(api.payment_json(service.get_payment(payment_id)))

    @app.get("/api/payments/<payment_id>/audit")
    def audit_trail(payment_id: str) -> Response:
        reader()
        return json_response(api.audit_json(service.audit_trail(payment_id)))

    @app.post("/api/payments/simulate-confirmation/<payment_id>")
    @app.post("/api/payments/<payment_id>/confirm")
    def confirm(payment_id: str) -> Response:
        who = writer()
        return json_response(api.payment_json(service.confirm_payment(payment_id, actor=who)))

    @app.post("/api/payments/<payment_id>/fail")
    def fail(payment_id: str) -> Response:
        who = writer()
        reason = api.parse_reason(request.get_data(), required=True)
        payment = service.fail_payment(payment_id, reason=reason or "", actor=who)
        return json_response(api.payment_json(payment))

    @app.post("/api/payments/<payment_id>/cancel")
    def cancel(payment_id: str) -> Response:
        who = writer()
        reason = api.parse_reason(request.get_data(), required=False)
        payment = service.cancel_payment(payment_id, actor=who, reason=reason)
        return json_response(api.payment_json(payment))

    @app.get("/health/live")
    def live() -> Response:
        return json_response({"status": "ok"})

    @app.get("/health/ready")
    def ready() -> Response:
        status, body = api.health_response(service.health())
        return json_response(body, status)

    @app.get("/metrics")
    def metrics() -> Response:
        if meters is None:
            return json_response({"detail": "set PAYMENTORCH_OTEL=1 to expose metrics"}, 404)
        body, content_type = metrics_text()
        return Response(body, content_type=content_type)

    @app.get("/dev/token")
    def token() -> Response:
        if not settings.dev_mode:
            return json_response({"detail": "not found"}, 404)
        return json_response(dev_token(settings.jwt_secret, request.args.get("role")))

    @app.get("/")
    def dashboard() -> Response:
        return send_from_directory(STATIC, "index.html")

    return app
