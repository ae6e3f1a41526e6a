"""Encryption at rest for the customer id and metadata values (``paymentorch[crypto]``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from paymentorch.adapters._require import driver
from paymentorch.domain import StoreError

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
INDEX_PREFIX = "bi1."
"""How a blind index starts: what the ``customer_id`` column holds for a sealed row."""
SEALED = ""
"""The metadata key that holds the sealed customer id (no caller's key is empty)."""


class DecryptionFailed(StoreError):
    """A stored ciphertext would not open: a wrong or missing key, or a value moved from
    another row or field (the payment id and field name are bound to it)."""

    code = "decryption_failed"

    def __init__(self, payment_id: UUID | str, field: str, why: str) -> None:
        self.payment_id = str(payment_id)
        self.field = field
        super().__init__(f"payment {payment_id}: {field} does not decrypt ({why})")


class FieldEncryption:
    """AES-256-GCM for the customer id and each metadata value, bound to their row.

    Each value is stored as ``<key id>:<nonce and ciphertext, base64>`` with
    ``<payment id>|<field>`` as associated data, so a ciphertext copied to another row
    or field does not decrypt. ``keys`` maps key ids to 32-byte keys; ``active`` is the
    one new values use (the others still decrypt, for rotation). The ``customer_id``
    column holds a keyed HMAC-SHA256 of the id (a blind index: equal ids, equal
    indexes) so filters, the customer index and credit checks keep working;
    ``index_key`` is not rotated by ``paymentorch rotate-key``.

    Raises:
        ValueError: A key that is not 32 bytes, a bad key id, or ``active`` not in ``keys``.
        MissingDriver: ``cryptography`` is not installed (``paymentorch[crypto]``).
    """

    def __init__(self, keys: Mapping[str, bytes], *, active: str, index_key: bytes) -> None:
        aead = driver("cryptography.hazmat.primitives.ciphers.aead", "crypto")
        problems = [
            f"key id {k!r} must match {_KEY_ID.pattern}" for k in keys if not _KEY_ID.fullmatch(k)
        ]
        problems += [f"key {k!r} must be 32 bytes" for k, v in keys.items() if len(v) != 32]
        if active not in keys:
            problems.append(f"active key {active!r} is not among the keys")
        if len(index_key) < 32:
            problems.append("index_key must be at least 32 bytes")
        if problems:
            raise ValueError("; ".join(problems))
        self.active = active
        self._ciphers = {key_id: aead.AESGCM(key) for key_id, key in keys.items()}
        self._index_key = bytes(index_key)

    @classmethod
    def parse(cls, text: str) -> FieldEncryption:
        """From ``index=<base64>,<key id>=<base64>[,<key id>=<base64>...]``: the first key
        id is the active one (the form ``PAYMENTORCH_ENCRYPTION_KEY`` takes).

        Raises:
            ValueError: Another form, or keys that are not base64 of the right length.
        """
        pairs = [part.strip().partition("=") for part in text.split(",") if part.strip()]
        try:
            found = {name: base64.b64decode(value, validate=True) for name, _, value in pairs}
        except binascii.Error:
            raise ValueError("encryption keys must be base64") from None
        index_key = found.pop("index", None)
        if index_key is None or not found:
            raise ValueError("expected index=<base64>,<key id>=<base64>[,...]")
        active = next(name for name, _, _ in pairs if name != "index")
        return cls(found, active=active, index_key=index_key)

    @staticmethod
    def generate(key_id: str = "k1") -> str:
        """A new setting for ``parse``: a random index key and one random data key."""
        index, key = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
        return f"index={index},{key_id}={key}"

    def index(self, customer_id: str) -> str:
        """The blind index of a customer id."""
        digest = hmac.new(self._index_key, customer_id.encode(), hashlib.sha256).digest()
        return INDEX_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encrypt(self, payment_id: UUID | str, field: str, value: str) -> str:
        """``value`` sealed with the active key for ``field`` of ``payment_id``."""
        nonce = os.urandom(12)
        sealed = self._ciphers[self.active].encrypt(nonce, value.encode(), _aad(payment_id, field))
        return f"{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, payment_id: UUID | str, field: str, stored: str) -> str:
        """The value ``encrypt`` sealed.

        Raises:
            DecryptionFailed: Unknown key id, damaged text, or another row's or field's.
        """
        key_id, _, text = stored.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionFailed(payment_id, field, f"no key {key_id!r}")
        try:
            raw = base64.b64decode(text, validate=True)
            return str(cipher.decrypt(raw[:12], raw[12:], _aad(payment_id, field)).decode())
        except Exception:  # InvalidTag, bad base64 or UTF-8: all mean it will not open
            raise DecryptionFailed(payment_id, field, "authentication failed") from None

    def seal(
        self, payment_id: UUID | str, customer_id: str, metadata: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        """What a row stores: the blind index, and the metadata with each value sealed
        and the sealed customer id under the empty key."""
        sealed = {
            key: self.encrypt(payment_id, f"metadata.{key}", v) for key, v in metadata.items()
        }
        sealed[SEALED] = self.encrypt(payment_id, "customer_id", customer_id)
        return self.index(customer_id), sealed

    def open(
        self, payment_id: UUID | str, customer_id: str, metadata: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        """The clear customer id and metadata of a stored row (a row written before
        encryption was turned on is returned as it is)."""
        if SEALED not in metadata:
            return customer_id, dict(metadata)
        clear = {
            key: self.decrypt(payment_id, f"metadata.{key}", value)
            for key, value in metadata.items()
            if key != SEALED
        }
        opened = self.decrypt(payment_id, "customer_id", metadata[SEALED])
        # The blind index filters and credit checks trust must be this row's customer's.
        if not hmac.compare_digest(self.index(opened), customer_id):
            raise DecryptionFailed(
                payment_id, "customer_id", "the customer index does not match the customer"
            )
        return opened, clear

    def is_current(self, metadata: Mapping[str, str]) -> bool:
        """Whether a stored row is sealed, every value with the active key."""
        return SEALED in metadata and all(
            value.partition(":")[0] == self.active for value in metadata.values()
        )

    def seal_snapshot(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """An event's payment snapshot (``Payment.to_dict()``), sealed the same way."""
        index, metadata = self.seal(snapshot["id"], snapshot["customer_id"], snapshot["metadata"])
        return {**snapshot, "customer_id": index, "metadata": metadata}

    def open_snapshot(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """The snapshot ``seal_snapshot`` sealed (one stored clear comes back as it is)."""
        customer_id, metadata = self.open(
            snapshot["id"], snapshot["customer_id"], snapshot.get("metadata") or {}
        )
        return {**snapshot, "customer_id": customer_id, "metadata": metadata}


def _aad(payment_id: UUID | str, field: str) -> bytes:
    return f"paymentorch|{payment_id}|{field}".encode()
