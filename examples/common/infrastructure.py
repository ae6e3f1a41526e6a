"""The infrastructure adapters the settings name: cache, event sink, encryption."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import paymentorch as po
from examples.common.events import log_events
from examples.common.models import InfrastructureResponse
from examples.common.notices import EmailNotices, SentNotices
from examples.common.settings import Settings, collection_policy
from paymentorch.sinks import sink_from_url
from paymentorch.sync import SyncRedisCache


def service_options(settings: Settings, *, blocking: bool = False) -> dict[str, Any]:
    """``open_service`` (or ``open_sync_service``) options for the cache, encryption and
    the collection policy the worker runs."""
    options: dict[str, Any] = {"collections": collection_policy(settings)}
    if settings.cache_url:
        kind = SyncRedisCache if blocking else po.RedisCache
        options["cache"] = kind(settings.cache_url)
    if settings.encryption_key:
        options["encryption"] = po.FieldEncryption.parse(settings.encryption_key)
    return options


class Publisher:
    """The relay's sink: the broker ``PAYMENTORCH_SINK`` names, collection notices
    emailed through ``PAYMENTORCH_SMTP_URL``, and a log line per event."""

    def __init__(self, settings: Settings) -> None:
        self.broker = sink_from_url(settings.sink_url) if settings.sink_url else None
        self.notices = None
        if settings.smtp_url:
            sent = SentNotices(settings.smtp_sent) if settings.smtp_sent else None
            self.notices = EmailNotices(settings.smtp_url, sender=settings.smtp_from, sent=sent)

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        if self.broker is not None:
            await self.broker(events)
        if self.notices is not None:  # after the broker: a repeat it gets is harmless
            await self.notices(events)
        await log_events(events)

    async def aclose(self) -> None:
        if self.broker is not None:
            await self.broker.aclose()
        if self.notices is not None:
            await self.notices.aclose()


def describe(
    settings: Settings, service: po.PaymentService | po.SyncPaymentService
) -> InfrastructureResponse:
    """What ``service`` runs on, for the dashboard (no secrets, no credentials)."""
    cache = getattr(service.cache, "inner", service.cache)  # behind the sealing cache, if any
    if isinstance(cache, (po.RedisCache, SyncRedisCache)):
        cache_kind = "redis (local tier)" if cache.local else "redis"
    else:
        cache_kind = "local" if cache is not None else "none"
    scheme = (settings.sink_url or "").partition("://")[0]
    events: Literal["log", "nats", "rabbitmq"] = "log"
    if scheme in ("nats", "tls"):
        events = "nats"
    elif scheme in ("amqp", "amqps"):
        events = "rabbitmq"
    encryption = getattr(service.store, "encryption", None)  # an EncryptedStore's keys
    active = encryption.active if isinstance(encryption, po.FieldEncryption) else None
    return InfrastructureResponse(cache=cache_kind, events=events, encryption=active)
