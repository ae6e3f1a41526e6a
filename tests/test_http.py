"""RFC 9457 problem details for every error."""

from __future__ import annotations

import pytest

import paymentorch as po
from paymentorch.domain import FieldError, PaymentStatus, uuid7
from paymentorch.http import PROBLEM_JSON, problem_details

PID = uuid7()


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            po.ValidationError([FieldError("amount", "too big", "too_large")]),
            422,
            "validation_error",
        ),
        (po.PaymentNotFound(PID), 404, "payment_not_found"),
        (po.InvalidTransition(PID, PaymentStatus.FAILED, "confirm"), 409, "invalid_transition"),
        (po.IdempotencyConflict("k"), 409, "idempotency_conflict"),
        (po.PermissionDenied("u", "confirm"), 403, "permission_denied"),
        (po.StoreUnavailable("connection refused to 10.0.0.5"), 503, "store_unavailable"),
    ],
)
def test_each_error_maps_to_its_status(error: Exception, status: int, code: str) -> None:
    """Each paymentorch error has its status, a type URI, a title and a detail."""
    got, body = problem_details(error)
    assert got == status == body["status"]
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    assert body["code"] == code


def test_validation_lists_every_field() -> None:
    """A validation problem carries every field error."""
    error = po.ValidationError(
        [FieldError("amount", "too big", "too_large"), FieldError("currency", "unknown", "unknown")]
    )
    _, body = problem_details(error)
    assert body["errors"] == [
        {"field": "amount", "message": "too big", "code": "too_large"},
        {"field": "currency", "message": "unknown", "code": "unknown"},
    ]


def test_internals_are_not_revealed() -> None:
    """Store details and unexpected exceptions stay out of the body."""
    _, body = problem_details(po.StoreUnavailable("password=hunter2"))
    assert "hunter2" not in str(body)
    status, body = problem_details(RuntimeError("secret stack"))
    assert status == 500
    assert "secret" not in str(body)
    assert PROBLEM_JSON == "application/problem+json"


def test_only_an_unavailable_store_asks_for_a_retry() -> None:
    """A 503 carries Retry-After; errors that a repeat would meet again carry none."""
    from paymentorch.http import retry_after

    assert retry_after(po.StoreUnavailable("pool exhausted", limit="max_waiting")) == 1
    assert retry_after(po.IdempotencyConflict("k")) is None
    assert retry_after(RuntimeError("boom")) is None
