"""Opaque keyset cursors: a listing's position, tagged with the listing it belongs to."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from paymentorch.domain.errors import FieldError
from paymentorch.domain.payment import Payment
from paymentorch.domain.validation import MAX_PAGE

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


def page_position(
    limit: object,
    cursor: object,
    errors: list[FieldError],
    prefix: str = _PREFIX,
    listing: str = "list_payments",
) -> Keyset | None:
    """The position a page of ``listing`` starts after (None: the first page); a bad
    ``limit`` or ``cursor`` is added to ``errors``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_PAGE}", "range"))
    if cursor is None:
        return None
    decoded = decode_cursor(cursor, prefix, listing)
    if isinstance(decoded, FieldError):
        errors.append(decoded)
        return None
    return decoded
