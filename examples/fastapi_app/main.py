"""PaymentOrchestrator Lite on FastAPI: the payments API, health, metrics and a dashboard.

Run it with ``uvicorn --factory examples.fastapi_app.main:create_app``. The routes live
in one ``APIRouter`` module per family: ``payments``, ``money``, ``plans``,
``operations``, ``books`` and ``pages``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

import paymentorch as po
from examples.common.dashboard import STATIC
from examples.common.headers import DOCS_ASSETS
from examples.common.http_processor import close_processors, processor_from_urls
from examples.common.infrastructure import Publisher, service_options
from examples.common.observability import meter_provider
from examples.common.openapi import with_problems
from examples.common.ratelimit import RateLimiter
from examples.common.settings import Settings, configure_logging, credit_policy
from examples.fastapi_app import books, errors, money, operations, pages, payments, plans

EXPOSED = ["Location", "X-Correlation-ID", "Retry-After", "Idempotent-Replayed"]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the service, and run the outbox relay (and the worker, with a processor)."""
    settings: Settings = app.state.settings
    router = processor_from_urls(settings.processor_urls) if settings.processor_urls else None
    options = service_options(settings)
    service = await po.open_service(
        settings.url,
        meter_provider=app.state.meters,
        create_schema=True,
        processor=router,
        credit=credit_policy(settings),
        **options,
    )
    stop = asyncio.Event()
    publisher = Publisher(settings)
    background = [asyncio.create_task(po.OutboxRelay(service.store, publisher).run(stop))]
    if router is not None:  # the worker beside the relay: the processor's answers land
        background.append(asyncio.create_task(po.PaymentWorker(service).run(stop)))
    app.state.service = service
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*background)
        await service.aclose()
        await publisher.aclose()
        if (cache := options.get("cache")) is not None:  # the cache this app made
            await cache.aclose()
        if router is not None:
            await close_processors(router)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the service opens in the lifespan, so building it does no I/O."""
    configure_logging()
    app = FastAPI(
        title="PaymentOrchestrator Lite",
        description="A BNPL payments API built on paymentorch. Amounts are exact decimal "
        "strings; every error is an RFC 9457 problem.",
        version=po.__version__,
        lifespan=lifespan,
        docs_url=None,  # served by `pages`, from local files, within the pages' CSP
        redoc_url=None,
    )
    app.state.settings = settings = settings or Settings.from_env()
    app.state.meters = meter_provider(settings)
    app.state.limiter = RateLimiter(settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-ID"],
            expose_headers=EXPOSED,
        )
    errors.install(app)
    for family in (payments, money, plans, operations, books, pages):
        app.include_router(family.router)
    app.include_router(plans.book)
    app.include_router(operations.webhooks)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:  # the problem bodies are components too
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
