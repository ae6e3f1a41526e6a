"""The async service takes async ports, its blocking twin blocking ones: say so at once.

A blocking cache handed to the async service (or the reverse) would otherwise fail far
from the mistake, or, worse, read a coroutine object as a cached payment.
"""

from __future__ import annotations

import inspect


def require_async(port: object, name: str, method: str) -> None:
    """Raise ``TypeError`` unless ``port.method`` is a coroutine function."""
    if port is not None and not inspect.iscoroutinefunction(getattr(port, method, None)):
        raise TypeError(
            f"{name} must be asynchronous for PaymentService ({type(port).__name__}.{method}"
            " is not a coroutine function); the blocking twin takes the Sync* adapters"
        )


def require_sync(port: object, name: str, method: str) -> None:
    """Raise ``TypeError`` if ``port.method`` is a coroutine function."""
    if port is not None and inspect.iscoroutinefunction(getattr(port, method, None)):
        raise TypeError(
            f"{name} must be blocking for SyncPaymentService ({type(port).__name__}.{method}"
            " is a coroutine function): use the Sync* twin of the adapter"
        )
