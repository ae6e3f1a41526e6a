"""What the routes depend on: the service, the caller, exact JSON bodies, limits and the
responses' shared parts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

import paymentorch as po
from examples.common import api
from examples.common.access import next_actions, plan_matters, require_admin, require_reader
from examples.common.auth import Caller as CallerInfo
from examples.common.auth import caller_from_header
from examples.common.models import PaymentResponse
from examples.common.openapi import PROBLEM_REF
from examples.common.ratelimit import RateLimiter
from examples.common.settings import Settings
from examples.common.webhooks import SIGNATURE_HEADER, verify


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: each status a problem+json body."""
    described = {
        401: "No valid bearer token (or, for a webhook, no valid signature)",
        403: "The caller's role does not allow it",
        404: "No such payment (or not one of the caller's customer)",
        409: "The payment's status does not allow it, or the key was used otherwise",
        413: "The body is larger than the limit",
        415: "The body is not JSON",
        422: "The request broke a rule; `errors` lists every one",
        429: "Too many requests; see Retry-After",
        503: "The store cannot be reached; see Retry-After",
    }
    return {
        status: {
            "description": described[status],
            "content": {"application/problem+json": {"schema": PROBLEM_REF}},
        }
        for status in statuses
    }


READ = problems(401, 403, 422, 503)
READ_ONE = problems(401, 403, 404, 422, 503)
WRITE = problems(401, 403, 404, 409, 413, 415, 422, 429, 503)


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

    async def check(self, request: ExactRequest) -> None:
        """Refuse the request before FastAPI reads its parameters and body."""
        if request.method in {"POST", "PUT", "PATCH"}:
            api.check_content_type(request.headers.get("content-type"), await request.body())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            exact = ExactRequest(request.scope, request.receive)
            await self.check(exact)
            return await handler(exact)

        return route


class SignedRoute(ExactRoute):
    """Routes for processors' webhooks: signed with the shared secret (401) before
    anything else is read of them."""

    async def check(self, request: ExactRequest) -> None:
        secret = settings(request).webhook_secret
        verify(secret, request.headers.get(SIGNATURE_HEADER), await request.body())
        await super().check(request)


bearer = HTTPBearer(
    auto_error=False,
    description="A token from `python -m examples.token` (a PaymentUser's names its customer).",
)


def settings(request: Request) -> Settings:
    """The app's settings."""
    found: Settings = request.app.state.settings
    return found


def service(request: Request) -> po.PaymentService:
    """The app's service (opened in the lifespan)."""
    found: po.PaymentService = request.app.state.service
    return found


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> CallerInfo:
    """Who sent the request, from its bearer token."""
    header = None if credentials is None else f"Bearer {credentials.credentials}"
    return caller_from_header(settings(request).jwt_secret, header)


def reader(who: Annotated[CallerInfo, Depends(caller)]) -> CallerInfo:
    """A caller allowed to read (an admin, or a user for its customer)."""
    require_reader(who)
    return who


def admin(request: Request, who: Annotated[CallerInfo, Depends(caller)]) -> CallerInfo:
    """A PaymentAdmin."""
    require_admin(who, f"{request.method} {request.url.path}")
    return who


def limited(request: Request) -> None:
    """Count a write against the client's rate limit."""
    limiter: RateLimiter = request.app.state.limiter
    limiter.hit(request.client.host if request.client else "unknown")


def known_query(known: set[str]) -> Callable[[Request], None]:
    """A dependency refusing query parameters the route does not know."""

    def check(request: Request) -> None:
        if errors := api.check_query(request.query_params.keys(), known):
            raise po.ValidationError(errors)

    return check


async def present(svc: po.PaymentService, who: CallerInfo, payment: po.Payment) -> PaymentResponse:
    """``payment`` as the API shows it to ``who``, with what it may do next."""
    return (await present_all(svc, who, [payment]))[0]


async def present_all(
    svc: po.PaymentService, who: CallerInfo, payments: Sequence[po.Payment]
) -> list[PaymentResponse]:
    """Each payment with what ``who`` may do next (an admin's needs its operations, and
    a confirmed plan payment's its plan)."""
    if not who.admin:
        return [PaymentResponse.of(p) for p in payments]

    async def context(p: po.Payment) -> tuple[list[po.Operation], po.Plan | None]:
        plan = await svc.plan(p.id) if plan_matters(p) else None
        return await svc.operations(p.id), plan

    found = await asyncio.gather(*(context(p) for p in payments))
    return [
        PaymentResponse.of(p, next_actions(who, p, ops, plan))
        for p, (ops, plan) in zip(payments, found, strict=True)
    ]


PaymentId = Annotated[UUID, Path(description="The payment's id.")]
OperationId = Annotated[UUID, Path(description="The operation's id.")]
Service = Annotated[po.PaymentService, Depends(service)]
Caller = Annotated[CallerInfo, Depends(caller)]
Reader = Annotated[CallerInfo, Depends(reader)]
Admin = Annotated[CallerInfo, Depends(admin)]


def iso(value: object) -> object:
    """A query parameter's ISO 8601 text as a datetime (anything else is refused)."""
    # ISO 8601 text only, as the document says (and as the Flask app reads it): Pydantic
    # would also take "0.5" as seconds since 1970.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("type", "must be an ISO 8601 date and time") from None
    return value


CreatedFrom = Annotated[
    datetime | None,
    BeforeValidator(iso),
    Query(alias="createdFrom", description="Created at or after (ISO 8601, with a zone)."),
]
CreatedTo = Annotated[
    datetime | None,
    BeforeValidator(iso),
    Query(alias="createdTo", description="Created before (ISO 8601, with a zone)."),
]
CustomerQuery = Annotated[
    str | None,
    Query(
        alias="customerId",
        max_length=100,
        description="Only this payer (a PaymentUser always sees only its own).",
    ),
]
CorrelationHeader = Annotated[
    str | None,
    Header(
        alias="X-Correlation-ID",
        description="Tags the audit entries and events; echoed back, or made up.",
    ),
]
KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=api.KEY_LENGTH,
        description="Makes a retry safe: a repeat with the same key answers as the first"
        " call did, even if the payment moved on since.",
    ),
]
