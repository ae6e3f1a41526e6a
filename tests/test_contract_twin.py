"""The store contract, run against the blocking twin's stores on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import functools

import pytest

from paymentorch.sync.adapters import open_sync_store
from paymentorch.testing import Backend, open_async_view
from paymentorch.testing.contract import *  # noqa: F403


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.memory),
        pytest.param("sqlite_backend", marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param("postgres_backend", marks=pytest.mark.postgres, id="postgres"),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The twin's store on each backend, seen through an async view."""
    if request.param == "memory":
        return Backend(
            "memory-twin", functools.partial(open_async_view, open_sync_store, "memory://")
        )
    async_backend: Backend = request.getfixturevalue(request.param)
    url = async_backend.url
    assert url is not None
    return Backend(
        f"{async_backend.name}-twin",
        functools.partial(open_async_view, open_sync_store, url, create_schema=False),
        shared=True,
        url=url,
    )
