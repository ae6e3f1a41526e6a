"""Request parsing and response mapping shared by both apps: camelCase JSON, exact money.

Amounts are read with ``json.loads(parse_float=Decimal)``, so ``0.1`` is the decimal 0.1
and never passes through a binary float; responses carry amounts as decimal strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import paymentorch as po
from examples.common.auth import AuthError
from examples.common.ratelimit import RateLimited
from paymentorch.domain import FieldError
from paymentorch.http import PROBLEM_JSON, problem_details, problem_type

CREATE_FIELDS = {"customerId", "amount", "currency", "metadata"}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def read_json(body: bytes, *, required: bool = True) -> dict[str, Any]:
    """A JSON object from ``body``, numbers as exact Decimals."""
    if not body.strip():
        if required:
            raise po.ValidationError([FieldError("body", "a JSON object is required", "json")])
        return {}
    try:
        value = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise po.ValidationError([FieldError("body", f"malformed JSON: {exc}", "json")]) from None
    if not isinstance(value, dict):
        raise po.ValidationError([FieldError("body", "must be a JSON object", "json")])
    return value


def _unknown_fields(body: Mapping[str, Any], allowed: set[str]) -> list[FieldError]:
    return [
        FieldError(name, "is not a known field", "unknown_field")
        for name in sorted(set(body) - allowed)
    ]


def parse_create(body: bytes, policy: po.ValidationPolicy | None = None) -> dict[str, Any]:
    """Keyword arguments for ``create_payment`` from a request body.

    Problems with the body's shape are reported together with the payment rules' own, so
    one response lists everything wrong.
    """
    data = read_json(body)
    errors = _unknown_fields(data, CREATE_FIELDS)
    for name in ("customerId", "amount"):
        if name not in data:
            errors.append(FieldError(name, "is required", "required"))
    amount = data.get("amount")
    if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
        amount = str(amount)  # exact already; the library reads the digits
    arguments: dict[str, Any] = {
        "customer_id": data.get("customerId"),
        "amount": amount,
        "currency": data.get("currency"),
        "metadata": data.get("metadata"),
    }
    if errors:
        _, rules = (policy or po.ValidationPolicy()).check_payment(
            po.NewPayment(**arguments), default_currency="USD"
        )
        named = {e.field for e in errors}
        errors += [e for e in rules if camel(e.field) not in named]
        raise po.ValidationError(errors)
    return arguments


def camel(field: str) -> str:
    """``customer_id`` as the API names it: ``customerId``."""
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def parse_reason(body: bytes, *, required: bool) -> str | None:
    """The ``reason`` of a fail or cancel request."""
    data = read_json(body, required=required)
    errors = _unknown_fields(data, {"reason"})
    if required and "reason" not in data:
        errors.append(FieldError("reason", "is required", "required"))
    if errors:
        raise po.ValidationError(errors)
    reason = data.get("reason")
    return reason if reason is None or isinstance(reason, str) else str(reason)


def parse_list_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``list_payments`` from query parameters."""
    errors = _unknown_fields(query, {"status", "customerId", "limit", "cursor"})
    limit: Any = query.get("limit", "50")
    try:
        limit = int(limit)
    except ValueError:
        errors.append(FieldError("limit", "must be an integer", "type"))
    if errors:
        raise po.ValidationError(errors)
    return {
        "status": query.get("status") or None,
        "customer_id": query.get("customerId") or None,
        "limit": limit,
        "cursor": query.get("cursor") or None,
    }


def payment_json(payment: po.Payment) -> dict[str, Any]:
    """A payment in the API's camelCase JSON."""
    return {
        "id": str(payment.id),
        "customerId": payment.customer_id,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "status": payment.status.value,
        "createdAt": payment.created_at.isoformat(),
        "updatedAt": payment.updated_at.isoformat(),
        "version": payment.version,
        "failureReason": payment.failure_reason,
        "idempotencyKey": payment.idempotency_key,
        "metadata": dict(payment.metadata),
    }


def page_json(page: po.Page) -> dict[str, Any]:
    """A page of payments."""
    return {"items": [payment_json(p) for p in page.items], "nextCursor": page.next_cursor}


def audit_json(entries: list[po.AuditEntry]) -> list[dict[str, Any]]:
    """An audit trail, oldest first."""
    return [
        {
            "action": e.action,
            "fromStatus": e.from_status.value if e.from_status else None,
            "toStatus": e.to_status.value,
            "actorId": e.actor_id,
            "at": e.at.isoformat(),
            "reason": e.reason,
            "correlationId": e.correlation_id,
        }
        for e in entries
    ]


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, problem body, headers)`` for any error a route raised."""
    headers = {"Content-Type": PROBLEM_JSON}
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = 'Bearer realm="paymentorch"'
        return 401, _problem("unauthorized", "Unauthorized", 401, exc.detail), headers
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        return 429, _problem("rate_limited", "Too many requests", 429, str(exc)), headers
    status, body = problem_details(exc)
    for error in body.get("errors", []):
        error["field"] = camel(error["field"])
    return status, body, headers


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


def health_response(report: po.HealthReport) -> tuple[int, dict[str, Any]]:
    """Readiness: 503 when the store is down, 200 otherwise (degraded still serves)."""
    return (503 if report.status == "down" else 200), report.to_dict()
