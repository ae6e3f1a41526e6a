"""Health, metrics, the dashboard, the API's document and its pages, development tokens."""

from __future__ import annotations

from flask import Blueprint, Response, request, send_from_directory

from examples.common import api
from examples.common.dashboard import STATIC, dev_token
from examples.common.headers import (
    DOCS_ASSETS,
    REDOC_CSP,
    redoc_page,
    redoc_script,
    swagger_page,
)
from examples.common.observability import metrics_text
from examples.common.openapi import document
from examples.flask_app.http import ext, json_response, service

blueprint = Blueprint("pages", __name__)
TITLE = "PaymentOrchestrator Lite"


@blueprint.get("/health/live")
def live() -> Response:
    return json_response({"status": "ok"})


@blueprint.get("/health/ready")
def ready() -> Response:
    status, body, headers = api.health_response(service().health())
    return json_response(body, status, headers)


@blueprint.get("/metrics")
def metrics() -> Response:
    if ext().meters is None:
        raise api.HttpProblem(
            404, "not_found", "Not found", "set PAYMENTORCH_OTEL=1 to expose metrics"
        )
    body, content_type = metrics_text()
    return Response(body, content_type=content_type)


@blueprint.get("/dev/token")
def token() -> Response:
    settings = ext().settings
    if not settings.dev_mode:
        raise api.http_error(404, "Not found")
    found = dev_token(settings.jwt_secret, request.args.get("role"), request.args.get("customer"))
    return json_response(found)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The same document as the FastAPI app's: the same API."""
    return json_response(document())


@blueprint.get("/docs")
def swagger() -> Response:
    return Response(swagger_page(TITLE), mimetype="text/html")


@blueprint.get("/redoc")
def redoc() -> Response:
    response = Response(redoc_page(TITLE), mimetype="text/html")
    response.headers["Content-Security-Policy"] = REDOC_CSP
    return response


@blueprint.get("/docs-assets/redoc.standalone.js")
def redoc_bundle() -> Response:
    return Response(redoc_script(), mimetype="text/javascript")


@blueprint.get("/docs-assets/<path:name>")
def docs_assets(name: str) -> Response:
    return send_from_directory(DOCS_ASSETS, name)


@blueprint.get("/")
def dashboard() -> Response:
    return send_from_directory(STATIC, "index.html")
