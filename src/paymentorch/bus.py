"""An in-process event bus: a sink that hands events to subscribed handlers."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Sequence

from paymentorch.domain import PaymentEvent

Handler = Callable[[PaymentEvent], Awaitable[None] | None]


class InMemoryEventBus:
    """Route events to handlers by type: ``"payment.confirmed"``, ``"payment.*"`` or ``"*"``.

    Use it as the relay's sink. Handlers run in event order; if one raises, the batch is
    retried, so a handler may see an event again: de-duplicate by ``event.id``.
    """

    def __init__(self) -> None:
        self._subscriptions: list[tuple[str, Handler]] = []

    def subscribe(self, pattern: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` (sync or async) for each event whose type matches ``pattern``.

        Returns a function that unsubscribes.
        """
        entry = (pattern, handler)
        self._subscriptions.append(entry)
        return lambda: self._subscriptions.remove(entry)

    async def __call__(self, events: Sequence[PaymentEvent]) -> None:
        """Deliver ``events`` to every matching handler, in order."""
        for event in events:
            for pattern, handler in list(self._subscriptions):
                if fnmatch.fnmatchcase(event.type, pattern):
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
