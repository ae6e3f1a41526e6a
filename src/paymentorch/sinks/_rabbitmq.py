"""Relayed events to a RabbitMQ topic exchange."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from paymentorch.adapters._require import driver
from paymentorch.domain import PaymentEvent
from paymentorch.sinks._encoding import encode_event, group_by_payment


class RabbitMQSink:
    """Publishes each event to a durable topic exchange, routing key = the event type.

    Messages are persistent, with ``message_id`` = the event id and ``type`` = the event
    type, on a channel with publisher confirms: a call returns once the broker confirmed
    every event, and raises otherwise, so the relay keeps the batch. A broker that lost
    a confirm may hold an event twice; consumers de-duplicate by message id. The
    connection is made on first use and re-made after a cut.
    """

    def __init__(
        self,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        *,
        exchange: str = "paymentorch",
        timeout: float = 5.0,
    ) -> None:
        self._pika = driver("aio_pika", "rabbitmq")
        self.url = url
        self.exchange_name = exchange
        self.timeout = timeout
        self._connection: Any = None
        self._exchange: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, events: Sequence[PaymentEvent]) -> None:
        exchange = await self._ready()
        pika = self._pika

        async def publish(group: list[PaymentEvent]) -> None:
            for event in group:
                message = pika.Message(
                    encode_event(event),
                    delivery_mode=pika.DeliveryMode.PERSISTENT,
                    message_id=str(event.id),
                    type=event.type,
                    content_type="application/json",
                    timestamp=event.occurred_at,
                )
                await exchange.publish(message, routing_key=event.type, timeout=self.timeout)

        await asyncio.gather(*(publish(g) for g in group_by_payment(events)))

    async def _ready(self) -> Any:
        async with self._lock:
            if self._exchange is None or self._connection.is_closed:
                connection = await self._pika.connect_robust(self.url, timeout=self.timeout)
                try:
                    channel = await connection.channel(publisher_confirms=True)
                    exchange = await channel.declare_exchange(
                        self.exchange_name, self._pika.ExchangeType.TOPIC, durable=True
                    )
                except BaseException:
                    await connection.close()
                    raise
                self._connection, self._exchange = connection, exchange
            return self._exchange

    async def aclose(self) -> None:
        """Close the connection (a later call opens a new one)."""
        async with self._lock:
            connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await connection.close()
