"""Both apps fuzzed by schemathesis, every phase, through the API's OpenAPI document.

The apps run on real loopback servers (uvicorn, werkzeug) with an admin token.
``schemathesis run`` takes each operation through its four phases (the document's
examples, coverage of its boundaries, fuzzing with 40 examples an operation, and
stateful sequences that follow the links between operations) with every check it has
on by default: no 5xx, only documented statuses, content types, headers and bodies,
schema-violating requests refused and schema-valid ones taken. The Flask app serves the
same document, so the same run holds it to the same contract.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import pytest

from examples.common.auth import make_token
from examples.common.settings import Settings
from tests.examples.conftest import SECRET

pytestmark = pytest.mark.once  # fuzzing

EXAMPLES = 40  # per operation and phase
# The API answers 422 for rules no schema can state (a period that ends before it
# starts, a cursor it never issued, a payment without a plan, a capture method without
# a processor): a schema-valid request may break them.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""


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


def _fuzz(base_url: str, folder: Path) -> None:
    config, report = folder / "schemathesis.toml", folder / "junit.xml"
    config.write_text(CONFIG)
    token = make_token(SECRET, "fuzzer", ["PaymentAdmin"])
    command = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [str(command), "--config-file", str(config), "run", f"{base_url}/openapi.json",
         "--header", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES),
         "--phases", "examples,coverage,fuzzing,stateful", "--seed", "1",
         "--generation-database", "none", "--no-color",
         "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=600, check=False, cwd=folder,
    )  # fmt: skip
    assert report.exists(), done.stdout + done.stderr
    suite = ElementTree.parse(report).getroot()  # noqa: S314 - our own run's report
    cases = suite.findall(".//testcase")
    ran = {case.get("name", "") for case in cases}
    assert set(_operations()) <= ran, done.stdout  # every operation (and the stateful run)
    failed = {
        case.get("name", ""): "\n".join(f.text or "" for f in case.findall("failure"))
        for case in cases
        if case.findall("failure") or case.findall("error")
    }
    assert not failed, done.stdout[-20_000:]


def _operations() -> list[str]:
    """Every operation of the document, as schemathesis names its test cases."""
    from examples.common.openapi import document

    methods = {"get", "post", "put", "patch", "delete"}
    paths = document()["paths"].items()
    return [f"{m.upper()} {path}" for path, item in paths for m in item if m in methods]


def test_fastapi_app_conforms_to_its_document(fastapi_server: str, tmp_path: Path) -> None:
    """Every phase, every operation of the FastAPI app: nothing found."""
    _fuzz(fastapi_server, tmp_path)


def test_flask_app_conforms_to_the_same_document(flask_server: str, tmp_path: Path) -> None:
    """The Flask app, through the document it serves (the FastAPI app's): nothing found."""
    _fuzz(flask_server, tmp_path)
