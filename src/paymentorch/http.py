"""Framework-neutral helpers for hosts: errors as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

from paymentorch.domain import (
    AmountExceeded,
    CreditLimitExceeded,
    IdempotencyConflict,
    InvalidTransition,
    PaymentError,
    PaymentNotFound,
    PermissionDenied,
    StoreUnavailable,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[PaymentError], int, str]] = [
    (ValidationError, 422, "Invalid request"),
    (PaymentNotFound, 404, "Payment not found"),
    (InvalidTransition, 409, "Invalid transition"),
    (IdempotencyConflict, 409, "Idempotency key reused"),
    (AmountExceeded, 409, "Amount exceeded"),
    (CreditLimitExceeded, 409, "Credit limit exceeded"),
    (PermissionDenied, 403, "Permission denied"),
    (StoreUnavailable, 503, "Service unavailable"),
]


def problem_type(code: str) -> str:
    """The ``type`` URI of a problem with this error code."""
    return f"urn:paymentorch:problem:{code}"


def problem_details(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Map an exception to ``(HTTP status, RFC 9457 body)``.

    paymentorch errors keep their message; anything else becomes a bare 500 that
    reveals nothing of its cause.
    """
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            body: dict[str, Any] = {
                "type": problem_type(kind.code),
                "title": title,
                "status": status,
                "detail": "the store could not be reached" if status == 503 else str(exc),
                "code": kind.code,
            }
            if isinstance(exc, ValidationError):
                body["errors"] = [
                    {"field": e.field, "message": e.message, "code": e.code} for e in exc.errors
                ]
            return status, body
    return 500, {
        "type": problem_type("internal_error"),
        "title": "Internal error",
        "status": 500,
        "detail": "an unexpected error occurred",
        "code": "internal_error",
    }


def retry_after(exc: BaseException) -> int | None:
    """Seconds for a ``Retry-After`` header, or None.

    Set for ``StoreUnavailable`` (503): the backend was unreachable, saturated or slower
    than a limit, and the same request may be repeated (a write with its idempotency
    key is safe to repeat: a transition or creation it already made comes back as it
    was). Other errors would be met again, so they get none.
    """
    return 1 if isinstance(exc, StoreUnavailable) else None
