"""What the service's own checks cost a memory lifecycle beyond keeping its records:
``python -m benchmarks.budget``.

The ``dicts`` baseline keeps the in-memory store's records and does nothing else. What
the service adds on top (validating the request, checking the actor's role, a span and
the metrics of each call, the cache) is timed here piece by piece, each alone with
``timeit``, as a lifecycle (create, confirm) calls it. A goal of N lifecycles/s leaves
1/N of a second a lifecycle: if what ``dicts`` spends and these pieces already add up
to more, no leaner record-keeping reaches the goal.
"""

from __future__ import annotations

import asyncio
import timeit
from collections.abc import Callable
from typing import Any

import paymentorch as po
from paymentorch.domain import NewPayment
from paymentorch.usecases.context import describe

CALLS = 100_000


def _each(work: Callable[[], Any], calls: int) -> float:
    """Microseconds a call of ``work``."""
    return timeit.timeit(work, number=calls) / calls * 1e6


def _ran(coroutine: Any) -> None:
    """Run a coroutine that never waits, without an event loop's turn."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise RuntimeError("the coroutine waited")


async def pieces(calls: int = CALLS) -> dict[str, float]:
    """Microseconds a lifecycle spends in each piece, each timed over ``calls`` calls."""
    async with await po.open_service("memory://") as service:
        ctx = service._ctx  # the parts the use cases call
        actor = po.Actor("bench", roles={po.Role.ADMIN})
        payment = await service.create_payment("AAAA-00001", "125.50", actor=actor)
        request = NewPayment("AAAA-00001", "125.50", None, None, None)

        def span() -> None:
            with service._span("create_payment"):  # each call opens one
                pass

        return {
            "validating the creation": _each(
                lambda: ctx.validation.validate_payment(request, default_currency="USD"), calls
            ),
            "reading the confirmation's id": _each(
                lambda: ctx.id_and_reason(payment.id, None, required=False, checked=False), calls
            ),
            "two role checks": 2 * _each(lambda: ctx.policy.check(actor, "confirm"), calls),
            "two calls' spans": 2 * _each(span, calls),
            "two spans described": 2 * _each(lambda: describe(payment), calls),
            "the two metrics": _each(lambda: ctx.telemetry.payments_created((payment,)), calls)
            + _each(lambda: ctx.telemetry.payment_changed(payment), calls),
            "two cache writes": 2 * _each(lambda: _ran(ctx.remember(payment)), calls),
        }


def main() -> None:
    found = asyncio.run(pieces())
    for name, micros in found.items():
        print(f"{micros:6.2f} µs  {name}")
    print(f"{sum(found.values()):6.2f} µs  in all, a lifecycle")


if __name__ == "__main__":
    main()
