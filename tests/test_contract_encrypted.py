"""The store contract again with encryption at rest, on a SQLite file: sealing and
opening change nothing a caller can see (PostgreSQL's encryption is tested in
``test_encryption.py``)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from paymentorch.testing import Backend
from paymentorch.testing.contract import *  # noqa: F403
from tests.encryption import open_encrypted

pytestmark = pytest.mark.once  # the contract through the sealing wrapper


def _encrypted_sqlite(sqlite_template: Path, tmp_path: Path) -> Backend:
    path = tmp_path / "sealed.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    opener = functools.partial(open_encrypted, url, create_schema=False)
    return Backend("sqlite-encrypted", opener, shared=True, url=url)


@pytest.fixture
def backend(sqlite_template: Path, tmp_path: Path) -> Backend:
    return _encrypted_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def shared_backend(sqlite_template: Path, tmp_path: Path) -> Backend:
    return _encrypted_sqlite(sqlite_template, tmp_path)
