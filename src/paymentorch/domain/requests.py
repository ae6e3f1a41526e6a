"""Idempotency keys on transitions: what a key asked for, and the answer a repeat gets.

A transition with a key writes the key with the change itself (one unique claim per
caller and key, in the change's own transaction), keeping the payment as the change
left it. A repeat reads that back instead of deciding again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain.errors import IdempotencyConflict
from paymentorch.domain.money import parse_amount
from paymentorch.domain.payment import Payment


@attrs.frozen
class RequestKey:
    """A transition's idempotency key and what was asked with it.

    The key's scope is the change's actor (``Change.audit.actor_id``), as for creations.

    Attributes:
        key: The caller's key (1 to 255 printable ASCII characters).
        action: ``confirm``, ``authorize``, ``capture``, ``fail`` or ``cancel``.
        request: The rest of the request as canonical JSON (``amount``, ``reason``).
    """

    key: str
    action: str
    request: str


@attrs.frozen
class KeyedChange:
    """A key a store holds: what was asked, and the payment as that change left it."""

    request: RequestKey
    payment: Payment


def request_key(
    key: str, action: str, *, amount: Decimal | None = None, reason: str | None = None
) -> RequestKey:
    """The ``RequestKey`` for ``action`` with its parameters (``amount``: what a capture
    took, decided)."""
    asked = {"amount": None if amount is None else str(amount), "reason": reason}
    return RequestKey(key, action, json.dumps(asked, sort_keys=True, separators=(",", ":")))


def replay(
    held: KeyedChange,
    payment_id: UUID,
    action: str,
    *,
    amount: object = None,
    reason: str | None = None,
) -> Payment:
    """The payment a repeat of ``held`` returns; a conflict when it asks for something else.

    A repeat without an amount asks for what the first call took (as a refund's does).

    Raises:
        IdempotencyConflict: another payment, another action, or other parameters.
    """
    request = held.request
    if held.payment.id != payment_id:
        raise IdempotencyConflict(request.key, "already used for another payment")
    if request.action != action:
        raise IdempotencyConflict(request.key, f"already used to {request.action} this payment")
    first = json.loads(request.request)
    differences = []
    if amount is not None:
        asked = parse_amount(amount)
        if isinstance(asked, str) or first["amount"] is None or asked != Decimal(first["amount"]):
            differences.append("amount")
    if reason != first["reason"]:
        differences.append("reason")
    if differences:
        raise IdempotencyConflict(request.key, "differs in " + ", ".join(differences))
    return held.payment
