"""A cache that holds payments sealed, as the encrypted store keeps them."""

from __future__ import annotations

from uuid import UUID

import attrs

from paymentorch.crypto import FieldEncryption
from paymentorch.domain import Payment
from paymentorch.ports import Cache


class EncryptedCache:
    """``cache`` holding payments sealed by ``encryption``, as the store keeps them: what
    a shared cache (Redis) rests is no clearer than the database. ``open_service(url,
    encryption=..., cache=...)`` puts it in front of the cache it is given."""

    def __init__(self, cache: Cache, encryption: FieldEncryption) -> None:
        self.inner = cache
        self.encryption = encryption

    async def get(self, payment_id: UUID) -> Payment | None:
        payment = await self.inner.get(payment_id)
        if payment is None:
            return None
        customer_id, metadata = self.encryption.open(
            payment.id, payment.customer_id, payment.metadata
        )
        return attrs.evolve(payment, customer_id=customer_id, metadata=metadata)

    async def set(self, payment: Payment) -> None:
        index, metadata = self.encryption.seal(payment.id, payment.customer_id, payment.metadata)
        await self.inner.set(attrs.evolve(payment, customer_id=index, metadata=metadata))

    async def delete(self, payment_id: UUID) -> None:
        await self.inner.delete(payment_id)
