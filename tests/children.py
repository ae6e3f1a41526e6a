"""Work for child processes in the tests (importable under ``spawn``)."""

from __future__ import annotations

import asyncio

import paymentorch as po


def confirm(url: str, payment_id: str) -> str:
    """Confirm the payment through a service with the default options; return its status."""

    async def run() -> str:
        async with await po.open_service(url) as service:
            payment = await service.confirm_payment(payment_id, actor=po.Actor.system())
            return payment.status.value

    return asyncio.run(run())


def instant_processor() -> po.testing.SimulatedProcessor:
    """A simulated processor that always succeeds, at once (for ``paymentorch worker``)."""
    return po.testing.SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=5)
