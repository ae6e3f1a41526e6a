"""Request reading and error mapping shared by both apps: exact JSON, one problem format.

JSON is read with ``parse_float=Decimal``, so ``0.1`` is the decimal 0.1 and never passes
through a binary float. Bodies are Pydantic models (``examples.common.models``); every
error, whatever raised it, leaves as an RFC 9457 problem whose ``detail`` and
``errors[].field`` name fields as the API does (camelCase).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import pydantic

import paymentorch as po
from examples.common.auth import AuthError
from examples.common.models import RULES, ProcessorResponse
from examples.common.ratelimit import RateLimited
from examples.common.webhooks import SIGNATURE_HEADER, BadSignature
from paymentorch.domain import FieldError
from paymentorch.domain.ledger import HOUSE
from paymentorch.http import PROBLEM_JSON, problem_details, problem_type, retry_after

Model = TypeVar("Model", bound=pydantic.BaseModel)
JSON_TYPES = ("application/json",)
LIST_QUERY = {"status", "customerId", "limit", "cursor", "createdFrom", "createdTo"}
SUMMARY_QUERY = {"customerId", "createdFrom", "createdTo"}
BALANCE_QUERY = {"kind", "owner", "currency"}
AGING_QUERY = {"asOf"}
DELINQUENT_QUERY = {"limit", "cursor"}
OWNER_LENGTH = 200
KEY_LENGTH = 255  # the longest Idempotency-Key, as the library's validation policy has it
RETRY_AFTER = "5"  # seconds a client waits before trying an unavailable store again
_CODES = {
    "missing": ("is required", "required"),
    "extra_forbidden": ("is not a known field", "unknown_field"),
}


class HttpProblem(Exception):
    """An HTTP-level refusal (413, 415, 405...) as a problem."""

    def __init__(
        self, status: int, code: str, title: str, detail: str, headers: Mapping[str, str] = {}
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = dict(headers)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def read_json(body: bytes) -> Any:
    """The JSON value in ``body``: numbers as exact Decimals; duplicate keys, NaN and
    nesting deeper than Python's recursion limit refused with a ``ValidationError``."""
    try:
        return json.loads(
            body,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        message = "nested too deeply"
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"malformed JSON: {exc}"
    raise po.ValidationError([FieldError("body", message, "json")])


def check_content_type(content_type: str | None, body: bytes) -> None:
    """415 for a body that is not JSON (an empty body needs no type)."""
    if not body:
        return
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise HttpProblem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "send the body as application/json",
            {"Accept-Post": "application/json"},
        )


def parse_body(model: type[Model], body: bytes, *, required: bool = True) -> Model | None:
    """``body`` as ``model``; one ``ValidationError`` names every problem."""
    if not body.strip():
        if required:
            raise po.ValidationError([FieldError("body", "a JSON object is required", "json")])
        return None
    data = read_json(body)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise po.ValidationError(field_errors(exc.errors())) from None


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic's errors as paymentorch's, with the API's field names."""
    found: list[FieldError] = []
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in {"body", "query", "header", "path"}:  # FastAPI's request parts
            loc = loc[1:]
        field = ".".join(loc) if loc and error["type"] != "json_invalid" else "body"
        message, code = _CODES.get(error["type"], (error["msg"], error["type"]))
        if error["type"] == "json_invalid":
            message, code = f"malformed JSON: {error.get('ctx', {}).get('error', '')}", "json"
        elif error["type"] == "model_attributes_type":
            message, code = "must be a JSON object", "json"
        found.append(FieldError(field, message, code))
    return found


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header; present but empty is a mistake, not a missing key,
    and it is at most as long as the document says (as the FastAPI app checks it)."""
    if header is not None and not header.strip():
        raise po.ValidationError(
            [FieldError("Idempotency-Key", "must not be empty when sent", "blank")]
        )
    if header is not None and len(header) > KEY_LENGTH:
        message = f"must be at most {KEY_LENGTH} characters"
        raise po.ValidationError([FieldError("Idempotency-Key", message, "length")])
    return header


def check_query(names: Iterable[str], known: set[str]) -> list[FieldError]:
    """Query parameters the route does not know: a typo must not widen a filter silently."""
    return [
        FieldError(name, "is not a known parameter", "unknown_field")
        for name in sorted(set(names) - known)
    ]


def parse_list_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``list_payments`` from query parameters."""
    errors = check_query(query, LIST_QUERY)
    limit: Any = query.get("limit", "50")
    try:
        limit = int(limit)
    except ValueError:
        errors.append(FieldError("limit", "must be an integer", "type"))
    period = _period(query, errors)
    if errors:
        raise po.ValidationError(errors)
    return {
        "status": query.get("status"),
        "customer_id": query.get("customerId"),
        "limit": limit,
        "cursor": query.get("cursor"),
        **period,
    }


def parse_summary_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``summarize_payments`` from query parameters."""
    errors = check_query(query, SUMMARY_QUERY)
    period = _period(query, errors)
    if errors:
        raise po.ValidationError(errors)
    return {"customer_id": query.get("customerId"), **period}


def parse_aging_query(query: Mapping[str, str]) -> datetime | None:
    """The ``as_of`` of an aging report from query parameters (``asOf``, ISO 8601)."""
    errors = check_query(query, AGING_QUERY)
    text, as_of = query.get("asOf"), None
    try:
        as_of = None if text is None else datetime.fromisoformat(text)
    except ValueError:
        errors.append(FieldError("asOf", "must be an ISO 8601 date and time", "type"))
    if errors:
        raise po.ValidationError(errors)
    return as_of


def parse_delinquent_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``delinquent_plans`` from query parameters."""
    errors = check_query(query, DELINQUENT_QUERY)
    limit: Any = query.get("limit", "50")
    try:
        limit = int(limit)
    except ValueError:
        errors.append(FieldError("limit", "must be an integer", "type"))
    if errors:
        raise po.ValidationError(errors)
    return {"limit": limit, "cursor": query.get("cursor")}


def parse_balance_query(query: Mapping[str, str]) -> po.Account | None:
    """The account a balance query names (None: the trial balance), from query parameters."""
    errors = check_query(query, BALANCE_QUERY)
    try:
        account = ledger_account(query.get("kind"), query.get("owner"), query.get("currency"))
    except po.ValidationError as exc:
        errors += exc.errors
    if errors:
        raise po.ValidationError(errors)
    return account


def ledger_account(kind: str | None, owner: str | None, currency: str | None) -> po.Account | None:
    """The one account ``kind``, ``owner`` and ``currency`` name, or None when none is given.

    ``kind`` and ``currency`` come together; ``owner`` is required for a receivable, payable
    or clearing account, and left out (or empty) for the house's fees and writeoffs."""
    if kind is None and owner is None and currency is None:
        return None
    errors: list[FieldError] = []
    kinds = [k.value for k in po.AccountKind]
    if kind is None:
        errors.append(FieldError("kind", "is required to read one account", "required"))
    elif kind not in kinds:
        errors.append(FieldError("kind", f"must be one of {', '.join(kinds)}", "choice"))
    if currency is None:
        errors.append(FieldError("currency", "is required to read one account", "required"))
    else:
        currency, found = RULES.check_field("currency", currency)
        errors += found
    house = kind in {k.value for k in HOUSE}
    if owner is not None and (len(owner) > OWNER_LENGTH or not owner.isprintable()):
        message = f"must be printable text of at most {OWNER_LENGTH} characters"
        errors.append(FieldError("owner", message, "type"))
    elif house and owner:
        errors.append(FieldError("owner", f"a {kind} account has no owner: leave it out", "choice"))
    elif kind in kinds and not house and not owner:
        errors.append(FieldError("owner", f"is required for a {kind} account", "required"))
    if errors or kind is None:
        raise po.ValidationError(errors)
    return po.Account(po.AccountKind(kind), owner or "", str(currency))


def _period(query: Mapping[str, str], errors: list[FieldError]) -> dict[str, datetime | None]:
    period: dict[str, datetime | None] = {}
    for name, argument in (("createdFrom", "created_from"), ("createdTo", "created_to")):
        text = query.get(name)  # present but empty is a mistake, as in the FastAPI app
        try:
            period[argument] = None if text is None else datetime.fromisoformat(text)
        except ValueError:
            errors.append(FieldError(name, "must be an ISO 8601 date and time", "type"))
    return period


def camel(field: str) -> str:
    """``customer_id`` as the API names it: ``customerId`` (``items[0].x`` kept as is)."""
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, problem body, headers)`` for any error a route raised."""
    headers = {"Content-Type": PROBLEM_JSON}
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = 'Bearer realm="paymentorch"'
        return 401, _problem("unauthorized", "Unauthorized", 401, exc.detail), headers
    if isinstance(exc, BadSignature):
        headers["WWW-Authenticate"] = f'{SIGNATURE_HEADER} realm="processor webhooks"'
        return 401, _problem("bad_signature", "Unauthorized", 401, exc.detail), headers
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        return 429, _problem("rate_limited", "Too many requests", 429, str(exc)), headers
    if isinstance(exc, HttpProblem):
        headers.update(exc.headers)
        return exc.status, _problem(exc.code, exc.title, exc.status, exc.detail), headers
    status, body = problem_details(exc)
    if (wait := retry_after(exc)) is not None:
        headers["Retry-After"] = str(wait)
    if "errors" in body:
        for error in body["errors"]:
            error["field"] = camel(error["field"])
        body["detail"] = "; ".join(f"{e['field']}: {e['message']}" for e in body["errors"])
    return status, body, headers


def http_error(status: int, title: str, headers: Mapping[str, str] = {}) -> HttpProblem:
    """A problem for a framework's own HTTP error (404 route, 405 method...)."""
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    detail = {
        404: "no such resource",
        405: f"allowed: {headers.get('Allow', '')}",
        413: "the request body is too large",
    }.get(status, title)
    return HttpProblem(status, codes.get(status, "http_error"), title, detail, headers)


def _problem(code: str, title: str, status: int, detail: str) -> dict[str, Any]:
    return {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }


def correlation_id(header: str | None) -> str:
    """The caller's ``X-Correlation-ID`` when it is sensible, else a new one."""
    if header and len(header) <= 200 and header.isascii() and header.isprintable():
        return header
    return str(uuid.uuid4())


def health_response(report: po.HealthReport) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Readiness: 503 when the store is down, 200 otherwise (degraded still serves).

    The body holds statuses and figures only: no driver's text, no exception, no
    backend name, since anyone may ask."""
    checks = {
        name: {
            key: value
            for key, value in check.items()
            if key == "status" or (isinstance(value, int | float) and not isinstance(value, bool))
        }
        for name, check in report.checks.items()
    }
    body = {"status": report.status, "checks": checks}
    return (503, body, {"Retry-After": RETRY_AFTER}) if report.status == "down" else (200, body, {})


def check_capture_method(capture_method: str | None, processor: object) -> None:
    """A capture method needs a processor; say so in the API's words."""
    if capture_method is not None and processor is None:
        message = "this service has no processor: leave it out, and a person confirms"
        raise po.ValidationError([FieldError("captureMethod", message, "choice")])


def check_sender(name: str, processor: object) -> str:
    """``name``, if the service routes to a processor of that name (404 otherwise)."""
    own = getattr(processor, "name", None)
    names = set(processor.processors) if isinstance(processor, po.Router) else {own}
    if processor is None or name not in names:
        detail = f"this service routes to no processor named {name!r}"
        raise HttpProblem(404, "no_processor", "No such processor", detail)
    return name


def processor_info(processor: object) -> ProcessorResponse:
    """The service's router and its breakers; 404 when the service has no processor."""
    if not isinstance(processor, po.Router):
        raise HttpProblem(404, "no_processor", "No processor",
                          "payments wait for a person: set PAYMENTORCH_PROCESSOR_URL")  # fmt: skip
    breakers = {name: b.state for name, b in processor.breakers.items()}
    return ProcessorResponse(name=processor.name, processors=breakers)
