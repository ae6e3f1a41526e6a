"""Both apps fuzzed by schemathesis through the FastAPI app's own OpenAPI document.

The apps run on real loopback servers (uvicorn, werkzeug) with an admin token; every
operation gets generated requests, valid and not, and each response must not be a 5xx,
must have a documented status and content type, and must match its documented schema.
The Flask app serves the same API, so the same document holds it to the same contract.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from examples.common.auth import make_token
from examples.common.settings import Settings
from tests.examples.conftest import SECRET

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25  # per operation and app: about 500 requests each, a few seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a starting server, not waiting out a race
    pytest.fail(f"nothing listens on port {port}")


@pytest.fixture
def fuzz_settings(settings: Settings) -> Settings:
    """No rate limit to speak of: the fuzzer sends hundreds of writes a minute."""
    return replace(settings, rate_limit="100000/minute")


@pytest.fixture
def fastapi_server(fuzz_settings: Settings) -> Iterator[str]:
    """The FastAPI app under uvicorn, in a thread, lifespan and all."""
    import uvicorn

    from examples.fastapi_app.main import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(fuzz_settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def flask_server(fuzz_settings: Settings) -> Iterator[str]:
    """The Flask app under werkzeug's threaded server."""
    from werkzeug.serving import make_server

    from examples.flask_app.main import create_app

    app = create_app(fuzz_settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    app.extensions["paymentorch"].close()


def _fuzz(document: dict[str, Any], base_url: str) -> None:
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {make_token(SECRET, 'fuzzer', ['PaymentAdmin'])}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: a failure here is reproducible
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        run()


def test_fastapi_app_conforms_to_its_document(fastapi_server: str) -> None:
    """Zero failures of the four checks on every operation of the FastAPI app."""
    import urllib.request

    with urllib.request.urlopen(f"{fastapi_server}/openapi.json") as reply:  # noqa: S310
        import json

        document = json.load(reply)
    _fuzz(document, fastapi_server)


def test_flask_app_conforms_to_the_same_document(
    flask_server: str, fuzz_settings: Settings
) -> None:
    """The Flask app, held to the FastAPI app's document: zero failures too."""
    from examples.fastapi_app.main import create_app

    _fuzz(create_app(fuzz_settings).openapi(), flask_server)
