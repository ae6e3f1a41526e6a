"""Every error as an RFC 9457 problem, and the headers every response carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import paymentorch as po
from examples.common import api
from examples.common.auth import AuthError
from examples.common.headers import SECURITY_HEADERS
from examples.common.ratelimit import RateLimited
from examples.common.webhooks import BadSignature

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def problem_response(exc: Exception) -> JSONResponse:
    """``exc`` as a problem+json response."""
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
        allowed = [
            method
            for method in METHODS
            if any(
                route.matches({**request.scope, "method": method})[0] is Match.FULL
                for route in request.app.router.routes
            )
        ]
        headers["Allow"] = ", ".join(allowed)
    return problem_response(api.http_error(exc.status_code, str(exc.detail), headers))


async def correlate_and_protect(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Tag the request's changes with its correlation id, answer even an unplanned
    failure with a problem, and put the security headers on every response."""
    correlation_id = api.correlation_id(request.headers.get("X-Correlation-ID"))
    with po.correlation(correlation_id):
        try:
            response = await call_next(request)
        except Exception as exc:  # the last resort: a problem, never a stack trace
            response = problem_response(exc)
    response.headers["X-Correlation-ID"] = correlation_id
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: FastAPI) -> None:
    """The problem handlers and the middleware, on ``app``."""
    for kind in (po.PaymentError, AuthError, BadSignature, RateLimited, api.HttpProblem):
        app.add_exception_handler(kind, problem)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_problem)
    app.middleware("http")(correlate_and_protect)
