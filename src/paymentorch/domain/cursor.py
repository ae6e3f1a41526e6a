"""Opaque keyset cursors: a listing's position, tagged with the listing it belongs to."""

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
    return encode_position((payment.created_at, payment.id))


def encode_position(position: Keyset, prefix: str = _PREFIX) -> str:
    """The cursor of ``position`` in the listing that ``prefix`` names."""
    raw = f"{prefix}{position[0].isoformat()}|{position[1]}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: object, prefix: str = _PREFIX, listing: str = "list_payments"
) -> Keyset | FieldError:
    """The ``(time, id)`` position in ``cursor``, or why it is not a cursor of
    ``listing``."""
    bad = FieldError("cursor", f"is not a cursor returned by {listing}", "cursor")
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= 200 or not cursor.isascii():
        return bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, at, payment_id = raw.split("|")
        created_at = datetime.fromisoformat(at)
        position = (created_at, UUID(payment_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return bad
    if version + "|" != prefix or created_at.tzinfo is None:
        return bad
    return position
