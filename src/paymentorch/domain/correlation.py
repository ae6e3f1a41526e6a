"""The correlation id that tags audit entries and events written within a request."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "paymentorch_correlation_id", default=None
)


@contextlib.contextmanager
def correlation(correlation_id: str | None) -> Iterator[str | None]:
    """Tag everything written inside the block with ``correlation_id``."""
    token = _current.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _current.reset(token)


def current_correlation_id() -> str | None:
    """The id set by the innermost ``correlation`` block, if any."""
    return _current.get()
