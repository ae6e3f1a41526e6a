"""Configuration from the environment."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field

import paymentorch as po

logger = logging.getLogger("examples")

DEFAULT_URL = "sqlite:///paymentorch-example.db"


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
        )
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
