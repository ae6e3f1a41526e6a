"""Both example apps behind one small client interface, so one suite tests both."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pytest

from examples.common.auth import make_token
from examples.common.settings import Settings
from examples.common.webhooks import SIGNATURE_HEADER, signature

SECRET = "test-secret-that-is-long-enough-for-hs256"
WEBHOOK_SECRET = "whsec-shared-by-the-service-and-its-processors"


def signed(
    event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for a client call that posts ``event`` as a signed webhook."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body, at=at)}
    return {"body": body, "headers": headers}


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


@dataclass
class Reply:
    """A response; header names are lower case."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class Client(Protocol):
    def __call__(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply: ...

    def break_store(self) -> None: ...

    def sabotage(self) -> None: ...


class _Base:
    def __call__(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        return self._send(method, path, body, sent)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        raise NotImplementedError


class FastAPIClient(_Base):
    def __init__(self, settings: Settings) -> None:
        from fastapi.testclient import TestClient

        from examples.fastapi_app.main import create_app

        self.app = create_app(settings)
        self.client = TestClient(self.app)
        self.client.__enter__()

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        response = self.client.request(method, path, content=body, headers=headers)
        return Reply(response.status_code, _lower(response.headers.items()), response.text)

    def break_store(self) -> None:
        self.client.portal.call(self.app.state.service.store.aclose)  # type: ignore[union-attr]

    def sabotage(self) -> None:
        async def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("sabotage: a bug nobody planned for")

        self.app.state.service.get_payment = broken  # type: ignore[union-attr]

    def close(self) -> None:
        self.client.__exit__(None, None, None)


class FlaskClient(_Base):
    def __init__(self, settings: Settings) -> None:
        from examples.flask_app.main import create_app

        self.app = create_app(settings)
        self.app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a 500 problem
        self.client = self.app.test_client()

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        response = self.client.open(path, method=method, data=body, headers=headers)
        with response:  # closes files the response streams, such as the dashboard's
            return Reply(
                response.status_code,
                _lower(response.headers.items()),
                response.get_data(as_text=True),
            )

    def break_store(self) -> None:
        self.app.extensions["paymentorch"].service.store.close()

    def sabotage(self) -> None:
        def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("sabotage: a bug nobody planned for")

        self.app.extensions["paymentorch"].service.get_payment = broken

    def close(self) -> None:
        self.app.extensions["paymentorch"].close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh SQLite file, a known secret, no development mode."""
    return Settings(
        url=f"sqlite:///{tmp_path}/api.db",
        jwt_secret=SECRET,
        webhook_secret=WEBHOOK_SECRET,
        dev_mode=False,
        rate_limit="1000/minute",
    )


@pytest.fixture(params=["fastapi", "flask"])
def make_client(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[Callable[..., Client]]:
    """Build the app under test, optionally with changed settings."""
    made: list[Any] = []

    def make(**changes: Any) -> Client:
        kind = FastAPIClient if request.param == "fastapi" else FlaskClient
        client = kind(replace(settings, **changes))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    """The app under test with the default test settings."""
    return make_client()


@pytest.fixture
def admin() -> str:
    return make_token(SECRET, "ops-3", ["PaymentAdmin"])


@pytest.fixture
def user() -> str:
    return make_token(SECRET, "u-17", ["PaymentUser"], customer="ABCD-12345")
