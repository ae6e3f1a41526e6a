"""``PaymentOrchestrator``, the Flask extension: settings, the service and its relay.

Nothing starts at import, and nothing starts before the first request of each process:
the service and the outbox relay open lazily, so a forking server (gunicorn
``--preload``) gives every worker its own.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading

from flask import Flask
from werkzeug.exceptions import HTTPException

import paymentorch as po
from examples.common import api
from examples.common.auth import AuthError
from examples.common.http_processor import close_processors, processor_from_urls
from examples.common.infrastructure import Publisher, service_options
from examples.common.observability import meter_provider
from examples.common.ratelimit import RateLimited, RateLimiter
from examples.common.settings import Settings, credit_policy
from examples.common.webhooks import BadSignature
from examples.flask_app import books, http, money, operations, pages, payments, plans
from paymentorch.sync import SyncRedisCache


class Background:
    """The outbox relay, and the worker when there is a processor, on a daemon thread
    with an event loop and a service of their own.

    The blocking twin has no event loop; the relay and the worker are async, so they open
    the same database through the async service (on ``memory://`` nothing is shared).
    """

    def __init__(self, settings: Settings) -> None:
        # The same credit policy, cache and encryption as the app: the worker's
        # settlements release exposure and update the shared cache too.
        self._settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="paymentorch-relay", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        async def run() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            settings = self._settings
            urls = settings.processor_urls
            router = processor_from_urls(urls) if urls else None
            options = service_options(settings)
            try:
                service = await po.open_service(
                    settings.url,
                    create_schema=False,
                    processor=router,
                    credit=credit_policy(settings),
                    **options,
                )
            finally:
                self._ready.set()
            publisher = Publisher(settings)
            work = [po.OutboxRelay(service.store, publisher).run(self._stop)]
            if router is not None:
                work.append(po.PaymentWorker(service).run(self._stop))
            try:
                await asyncio.gather(*work)
            finally:
                await service.aclose()
                await publisher.aclose()
                if (cache := options.get("cache")) is not None:  # the cache this thread made
                    await cache.aclose()
                if router is not None:
                    await close_processors(router)

        asyncio.run(run())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)  # the relay's loop, its thread
        self._thread.join()


class PaymentOrchestrator:
    """The Flask extension: settings, the service and the relay of this process."""

    def __init__(self, app: Flask | None = None, settings: Settings | None = None) -> None:
        self._given = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._service: po.SyncPaymentService | None = None
        self._relay: Background | None = None
        self._cache: SyncRedisCache | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the API's blueprints, the error handlers and the headers on ``app``."""
        self.settings = self._given or Settings.from_env()
        self.limiter = RateLimiter(self.settings.rate_limit)
        self.meters = meter_provider(self.settings)
        app.config["MAX_CONTENT_LENGTH"] = self.settings.max_body
        app.extensions["paymentorch"] = self
        for family in (payments, money, plans, operations, books, pages):
            app.register_blueprint(family.blueprint)
        app.register_blueprint(plans.book)
        for kind in (po.PaymentError, AuthError, BadSignature, RateLimited, api.HttpProblem):
            app.register_error_handler(kind, http.problem)
        app.register_error_handler(HTTPException, http.http_problem)
        app.register_error_handler(Exception, http.problem)
        app.before_request(http.correlate)
        app.teardown_request(http.uncorrelate)
        app.after_request(http.finish)
        atexit.register(self.close)

    @property
    def service(self) -> po.SyncPaymentService:
        """This process's service, opened (with its relay) on first use."""
        if self._service is None or self._pid != os.getpid():
            with self._lock:
                if self._service is None or self._pid != os.getpid():
                    urls = self.settings.processor_urls
                    options = service_options(self.settings, blocking=True)
                    self._service = po.open_sync_service(
                        self.settings.url,
                        meter_provider=self.meters,
                        create_schema=True,
                        processor=processor_from_urls(urls) if urls else None,
                        credit=credit_policy(self.settings),
                        **options,
                    )
                    self._cache = options.get("cache")
                    self._relay = Background(self.settings)
                    self._pid = os.getpid()
        return self._service

    def close(self) -> None:
        """Stop the relay and close the service, if this process opened them."""
        with self._lock:
            if self._pid == os.getpid():
                if self._relay is not None:
                    self._relay.stop()
                if self._service is not None:
                    self._service.close()
                if self._cache is not None:  # the cache this process made
                    self._cache.close()
            self._service = self._relay = self._cache = None
            self._pid = None
