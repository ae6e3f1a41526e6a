"""Signed processor webhooks.

A processor signs each callback it sends with the secret it shares with the service
(``PAYMENTORCH_WEBHOOK_SECRET``), in the ``Paymentorch-Signature`` header::

    Paymentorch-Signature: t=1767225600,v1=5f0c...e2

``t`` is the time of signing in Unix seconds and ``v1`` the lower-case hex HMAC-SHA256,
under the secret, of the bytes ``<t>.<raw body>`` (the decimal ``t``, a full stop, then
the body exactly as sent). Several ``v1`` values may be given (while a secret is
rotated); one must match. A signature older than five minutes is refused, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Paymentorch-Signature"
TOLERANCE = 300  # seconds a signature stays good, either way of this server's clock


class BadSignature(Exception):
    """A webhook whose signature is missing, malformed, wrong or stale (401)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


def signature(secret: str, body: bytes, *, at: int | None = None) -> str:
    """The ``Paymentorch-Signature`` value for ``body``, signed now (or ``at``)."""
    timestamp = int(time.time()) if at is None else at
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Return if ``header`` signs ``body`` under ``secret`` within ``TOLERANCE`` seconds.

    Raises:
        BadSignature: it is missing, malformed, stale or does not match.
    """
    if not header:
        raise BadSignature(f"the {SIGNATURE_HEADER} header is required")
    timestamps, macs = [], []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            macs.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not macs:
        raise BadSignature(f"the {SIGNATURE_HEADER} header must look like t=<seconds>,v1=<hex>")
    timestamp = int(timestamps[0])
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE:
        raise BadSignature(f"the signature is more than {TOLERANCE} seconds away from now")
    expected = _mac(secret, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, mac.strip().lower().encode()) for mac in macs):
        raise BadSignature("the signature does not match the body")


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
