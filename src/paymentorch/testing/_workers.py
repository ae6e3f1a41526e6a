"""Work done by child processes in the contract suite (importable under ``spawn``)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID

from paymentorch._open import open_service
from paymentorch.domain import Actor, InvalidTransition, Role

ADMIN = Actor("racer", roles={Role.ADMIN})


def race(url: str, payment_ids: list[str], keys: list[str], barrier: Any) -> dict[str, Any]:
    """Confirm every payment and create one payment per key, after all racers are ready."""
    return asyncio.run(_race(url, payment_ids, keys, barrier))


async def _race(url: str, payment_ids: list[str], keys: list[str], barrier: Any) -> dict[str, Any]:
    won: list[str] = []
    lost = 0
    created: list[str] = []
    async with await open_service(url, create_schema=False) as service:
        await asyncio.to_thread(barrier.wait)
        for pid in payment_ids:
            try:
                await service.confirm_payment(UUID(pid), actor=ADMIN)
                won.append(pid)
            except InvalidTransition:
                lost += 1
        for key in keys:
            payment = await service.create_payment(
                "RACE-00001", Decimal("10.00"), actor=ADMIN, idempotency_key=key
            )
            created.append(str(payment.id))
    return {"won": won, "lost": lost, "created": created}
