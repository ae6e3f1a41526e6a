"""Where a payment is in its life."""

from __future__ import annotations

import enum


class PaymentStatus(enum.StrEnum):
    """Where a payment is in its life.

    Pending moves to Authorized, Confirmed, Failed or Cancelled; Authorized to Confirmed
    (captured), Failed or Cancelled (voided); Confirmed to Refunded once everything
    captured is refunded. Failed, Cancelled and Refunded are final.
    """

    PENDING = "Pending"
    AUTHORIZED = "Authorized"
    CONFIRMED = "Confirmed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    REFUNDED = "Refunded"
