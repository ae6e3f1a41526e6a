"""Configuration from the environment."""

from __future__ import annotations

import logging
import math
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import paymentorch as po
from examples.common.notices import DEFAULT_SENDER, SmtpServer
from paymentorch.domain.collections import HARD_DECLINES

logger = logging.getLogger("examples")

DEFAULT_URL = "sqlite:///paymentorch-example.db"
DAYS = 3660  # the longest a collection setting can be, as the library's longest limit


@dataclass(frozen=True)
class Settings:
    """Everything the example apps read from the environment.

    Attributes:
        url: ``PAYMENTORCH_URL``; a SQLite file by default.
        jwt_secret: ``PAYMENTORCH_JWT_SECRET``; generated in development mode.
        dev_mode: True when no secret was configured: the app hands out tokens itself.
        webhook_secret: ``PAYMENTORCH_WEBHOOK_SECRET``, shared with the processors, which
            sign their callbacks with it (``examples.common.webhooks``). When unset a
            random one is made, so no callback is accepted; ``./dev example`` makes one
            and gives it to the app and the simulated processor.
        rate_limit: ``PAYMENTORCH_RATE_LIMIT`` for POST routes, per client (``100/minute``).
        cors_origins: ``PAYMENTORCH_CORS_ORIGINS``, comma-separated.
        telemetry: ``PAYMENTORCH_OTEL=1`` wires the OpenTelemetry SDK and ``/metrics``.
        max_body: ``PAYMENTORCH_MAX_BODY``, the largest request body in bytes (64 KiB).
        processor_urls: ``PAYMENTORCH_PROCESSOR_URL``, comma-separated: the processors
            (``python -m examples.processor``) money moves through, in failover order.
            Without it payments wait for a person, as in the seed design.
        credit_limit: ``PAYMENTORCH_CREDIT_LIMIT`` such as ``500.00 USD``: what one
            customer may owe at once in that currency (no limit when unset).
        cache_url: ``PAYMENTORCH_CACHE``, ``redis://host:6379/0``: the Redis cache every
            process shares (by default none on SQL databases, a local one in memory).
        sink_url: ``PAYMENTORCH_SINK``, ``nats://host:4222`` or ``amqp://...``: where the
            relay publishes events (by default they are logged).
        encryption_key: ``PAYMENTORCH_ENCRYPTION_KEY``,
            ``index=<base64>,<key id>=<base64>[,...]``: customer ids and metadata values
            encrypted at rest (``python -c "import paymentorch as po;
            print(po.FieldEncryption.generate())"`` makes one).
        smtp_url: ``PAYMENTORCH_SMTP_URL``, ``smtp://[user:password@]host[:port]`` or
            ``smtps://...``: the relay emails collection notices through it (reminders,
            declined collections; ``examples.common.notices``). None sends no email.
        smtp_from: ``PAYMENTORCH_SMTP_FROM``, the notices' sender.
        smtp_sent: ``PAYMENTORCH_SMTP_SENT``, a SQLite file recording the events already
            mailed, shared by every relay of the host (in memory when unset).
        collection_retries: ``PAYMENTORCH_COLLECTION_RETRIES``, days between a soft
            decline of an installment's collection and the next attempt, comma-separated
            (``1,3,7``; empty: never retried).
        collection_reminders: ``PAYMENTORCH_COLLECTION_REMINDERS``, days before a due date
            at which a reminder is sent, comma-separated (``3``; empty: none).
        hard_declines: ``PAYMENTORCH_HARD_DECLINES``, the decline codes never retried,
            comma-separated (the library's four by default).
        charge_off_days: ``PAYMENTORCH_CHARGE_OFF_DAYS``, days past the oldest unpaid due
            date at which a plan is charged off (``120``).
    """

    url: str = DEFAULT_URL
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    dev_mode: bool = True
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    rate_limit: str = "100/minute"
    cors_origins: tuple[str, ...] = ()
    telemetry: bool = False
    max_body: int = 64 * 1024
    processor_urls: tuple[str, ...] = ()
    credit_limit: str | None = None
    cache_url: str | None = None
    sink_url: str | None = None
    encryption_key: str | None = field(default=None, repr=False)
    smtp_url: str | None = field(default=None, repr=False)
    smtp_from: str = DEFAULT_SENDER
    smtp_sent: str | None = None
    collection_retries: tuple[float, ...] = (1.0, 3.0, 7.0)
    collection_reminders: tuple[float, ...] = (3.0,)
    hard_declines: frozenset[str] = HARD_DECLINES
    charge_off_days: float = 120.0

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment; log loudly when running in development mode."""
        secret = os.environ.get("PAYMENTORCH_JWT_SECRET") or None
        webhook_secret = os.environ.get("PAYMENTORCH_WEBHOOK_SECRET") or None
        origins = os.environ.get("PAYMENTORCH_CORS_ORIGINS", "")
        settings = cls(
            url=os.environ.get("PAYMENTORCH_URL") or DEFAULT_URL,
            jwt_secret=secret or secrets.token_urlsafe(32),
            dev_mode=secret is None,
            webhook_secret=webhook_secret or secrets.token_urlsafe(32),
            rate_limit=os.environ.get("PAYMENTORCH_RATE_LIMIT") or "100/minute",
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            telemetry=os.environ.get("PAYMENTORCH_OTEL") == "1",
            max_body=int(os.environ.get("PAYMENTORCH_MAX_BODY") or 64 * 1024),
            processor_urls=tuple(
                u.strip()
                for u in os.environ.get("PAYMENTORCH_PROCESSOR_URL", "").split(",")
                if u.strip()
            ),
            credit_limit=os.environ.get("PAYMENTORCH_CREDIT_LIMIT") or None,
            cache_url=os.environ.get("PAYMENTORCH_CACHE") or None,
            sink_url=os.environ.get("PAYMENTORCH_SINK") or None,
            encryption_key=os.environ.get("PAYMENTORCH_ENCRYPTION_KEY") or None,
            smtp_url=os.environ.get("PAYMENTORCH_SMTP_URL") or None,
            smtp_from=os.environ.get("PAYMENTORCH_SMTP_FROM") or DEFAULT_SENDER,
            smtp_sent=os.environ.get("PAYMENTORCH_SMTP_SENT") or None,
            collection_retries=_days("PAYMENTORCH_COLLECTION_RETRIES", cls.collection_retries),
            collection_reminders=_days(
                "PAYMENTORCH_COLLECTION_REMINDERS", cls.collection_reminders
            ),
            hard_declines=_codes("PAYMENTORCH_HARD_DECLINES", cls.hard_declines),
            charge_off_days=_days("PAYMENTORCH_CHARGE_OFF_DAYS", (cls.charge_off_days,), 1)[0],
        )
        if settings.smtp_url:
            SmtpServer.parse(settings.smtp_url)  # a bad URL stops the start, not a relay
        collection_policy(settings)  # and so does a policy the library refuses
        if settings.dev_mode:
            logger.warning(
                "DEVELOPMENT MODE: PAYMENTORCH_JWT_SECRET is not set, so a random secret was "
                "generated and GET /dev/token hands out tokens. Set the secret in production."
            )
        if webhook_secret is None and settings.processor_urls:
            logger.warning(
                "PAYMENTORCH_WEBHOOK_SECRET is not set: processor callbacks will be refused "
                "(the worker still learns every outcome by asking)."
            )
        return settings


def _days(name: str, default: tuple[float, ...], exactly: int | None = None) -> tuple[float, ...]:
    """The comma-separated numbers of days in ``name`` (``default`` when unset)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        found = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{name} is a comma-separated list of days, such as 1,3,7") from None
    valid = all(math.isfinite(d) and 0 < d <= DAYS for d in found)
    if (exactly is not None and len(found) != exactly) or not valid:
        count = "" if exactly is None else f"{exactly} "
        raise ValueError(f"{name} takes {count}numbers of days greater than 0 (at most {DAYS})")
    return found


def _codes(name: str, default: frozenset[str]) -> frozenset[str]:
    text = os.environ.get(name)
    if text is None:
        return default
    return frozenset(code.strip() for code in text.split(",") if code.strip())


def collection_policy(settings: Settings) -> po.CollectionPolicy:
    """The collection policy the worker beside the app runs (retries, reminders,
    charge-off), from ``settings``; ``ValidationError`` for one the library refuses."""
    return po.CollectionPolicy(
        retries=tuple(timedelta(days=d) for d in settings.collection_retries),
        hard_declines=settings.hard_declines,
        reminders=tuple(timedelta(days=d) for d in settings.collection_reminders),
        charge_off_after=timedelta(days=settings.charge_off_days),
    )


def configure_logging() -> None:
    """Show the examples' INFO logs (events relayed) unless the host configured logging."""
    root = logging.getLogger("examples")
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def credit_policy(settings: Settings) -> po.CreditPolicy | None:
    """The credit policy ``settings.credit_limit`` (``"500.00 USD"``) describes."""
    return None if settings.credit_limit is None else po.CreditPolicy.parse(settings.credit_limit)
