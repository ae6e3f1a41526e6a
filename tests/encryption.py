"""Fixed keys for the encryption tests (module-level, so child processes can open the
same stores)."""

from __future__ import annotations

import base64
from typing import Any

import paymentorch as po
from paymentorch.adapters import open_store

INDEX_KEY = bytes(range(32, 64))
KEYS = {"k1": bytes(range(32)), "k2": bytes(range(64, 96))}
SETTING = ",".join(
    [f"index={base64.b64encode(INDEX_KEY).decode()}"]
    + [f"{k}={base64.b64encode(v).decode()}" for k, v in KEYS.items()]
)


def encryption(active: str = "k1", *, keys: tuple[str, ...] = ("k1", "k2")) -> po.FieldEncryption:
    """The test keys, ``active`` sealing new values."""
    return po.FieldEncryption({k: KEYS[k] for k in keys}, active=active, index_key=INDEX_KEY)


async def open_encrypted(url: str, **options: Any) -> Any:
    """``open_store`` behind the test keys."""
    return await open_store(url, encryption=encryption(), **options)
