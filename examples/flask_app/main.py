"""PaymentOrchestrator Lite on Flask, over paymentorch's blocking twin.

``PaymentOrchestrator`` (``extension``) is a Flask extension with ``init_app``; the API
is one Blueprint per family: ``payments``, ``money``, ``plans``, ``operations``,
``books`` and ``pages``. Run it with ``flask --app examples.flask_app.main run``.
"""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from examples.common.dashboard import STATIC
from examples.common.settings import Settings, configure_logging
from examples.flask_app.extension import PaymentOrchestrator

EXPOSED = ["Location", "X-Correlation-ID", "Retry-After", "Idempotent-Replayed"]


def create_app(settings: Settings | None = None) -> Flask:
    """The application factory: Flask, CORS and the extension; no I/O, no thread."""
    configure_logging()
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    if settings.cors_origins:
        CORS(app, origins=list(settings.cors_origins), expose_headers=EXPOSED)
    PaymentOrchestrator(app, settings)
    return app


__all__ = ["PaymentOrchestrator", "create_app"]
