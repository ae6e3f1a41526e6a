"""Opaque keyset cursors for newest-first listing."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from paymentorch.domain.errors import FieldError
from paymentorch.domain.payment import Payment

_PREFIX = "1|"

Keyset = tuple[datetime, UUID]
"""A listing position: ``(created_at, id)`` of the last payment seen."""


def encode_cursor(payment: Payment) -> str:
    """The cursor that continues a listing after ``payment``."""
    raw = f"{_PREFIX}{payment.created_at.isoformat()}|{payment.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: object) -> Keyset | FieldError:
    """The ``(created_at, id)`` position in ``cursor``, or why it is not a cursor."""
    bad = FieldError("cursor", "is not a cursor returned by list_payments", "cursor")
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= 200 or not cursor.isascii():
        return bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, at, payment_id = raw.split("|")
        created_at = datetime.fromisoformat(at)
        position = (created_at, UUID(payment_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return bad
    if version + "|" != _PREFIX or created_at.tzinfo is None:
        return bad
    return position
