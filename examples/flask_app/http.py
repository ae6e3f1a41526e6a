"""What the blueprints share: the caller, exact JSON bodies, limits, problem responses
and the headers every response carries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

import paymentorch as po
from examples.common import api
from examples.common.access import next_actions, plan_matters, require_admin, require_reader
from examples.common.auth import Caller, caller_from_header
from examples.common.headers import SECURITY_HEADERS
from examples.common.models import PaymentResponse
from examples.common.webhooks import SIGNATURE_HEADER, verify

if TYPE_CHECKING:
    from examples.flask_app.extension import PaymentOrchestrator


def ext() -> PaymentOrchestrator:
    """The extension of the current app."""
    found: PaymentOrchestrator = current_app.extensions["paymentorch"]
    return found


def service() -> po.SyncPaymentService:
    """This process's service."""
    return ext().service


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


def models_response(models: Sequence[Any]) -> Response:
    """A list of response models as JSON."""
    return json_response([m.model_dump(mode="json", by_alias=True) for m in models])


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


def finish(response: Response) -> Response:
    """Echo the correlation id; put the security headers on every response."""
    if "correlation_id" in g:
        response.headers["X-Correlation-ID"] = g.correlation_id
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def caller() -> Caller:
    """Who sent the request, from its bearer token."""
    secret = ext().settings.jwt_secret
    return caller_from_header(secret, request.headers.get("Authorization"))


def reader() -> Caller:
    """A caller allowed to read (an admin, or a user for its customer)."""
    who = caller()
    require_reader(who)
    return who


def limited() -> None:
    """Count a write against the client's rate limit."""
    ext().limiter.hit(request.remote_addr or "unknown")


def admin() -> Caller:
    """A PaymentAdmin."""
    who = caller()
    require_admin(who, f"{request.method} {request.path}")
    return who


def writer() -> Caller:
    """A PaymentAdmin, counted against the rate limit: every write but creation."""
    limited()
    return admin()


def body_of(model: Any, *, required: bool = True) -> Any:
    """The request body as ``model``: JSON only (415), within the size limit (413)."""
    data = request.get_data()
    api.check_content_type(request.headers.get("Content-Type"), data)
    return api.parse_body(model, data, required=required)


def signed_body() -> None:
    """Refuse a webhook not signed with the shared secret (401)."""
    verify(ext().settings.webhook_secret, request.headers.get(SIGNATURE_HEADER),
           request.get_data())  # fmt: skip


def present(who: Caller, payment: po.Payment) -> PaymentResponse:
    """``payment`` as the API shows it to ``who``, with what it may do next."""
    return present_all(who, [payment])[0]


def present_all(who: Caller, payments: Sequence[po.Payment]) -> list[PaymentResponse]:
    """Each payment with what ``who`` may do next (an admin's needs its operations, and
    a confirmed plan payment's its plan)."""
    if not who.admin:
        return [PaymentResponse.of(p) for p in payments]
    svc = service()

    def actions(p: po.Payment) -> list[str]:
        plan = svc.plan(p.id) if plan_matters(p) else None
        return next_actions(who, p, svc.operations(p.id), plan)

    return [PaymentResponse.of(p, actions(p)) for p in payments]
