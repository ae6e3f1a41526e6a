"""The public surface at run time: what ``import paymentorch`` loads, the names it
exports, where the moved ones went, and the blocking twin's layout."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

import paymentorch as po
import paymentorch.errors

ROOT = Path(__file__).resolve().parent.parent

DRIVERS = (
    "_sqlite3",
    "aio_pika",
    "alembic",
    "cryptography",
    "nats",
    "psycopg",
    "psycopg_pool",
    "redis",
    "sqlalchemy",
    "sqlite3",
)
"""Top-level modules that only a backend or an adapter may import, when it is used."""

PINNED = {
    # DESIGN's po.<name>s that exist so far
    "Account", "AccountKind", "Actor", "AgingReport", "AmountExceeded", "AuditEntry",
    "CollectionPolicy", "CreditLimitExceeded",
    "CreditPolicy", "FieldEncryption", "IdempotencyConflict", "InMemoryEventBus",
    "Installment", "IntegrityReport", "InvalidTransition", "JournalEntry", "LateFee",
    "LateFeePolicy",
    "NewPayment", "Operation", "OperationKind", "OperationStatus", "OutboxRelay", "Outcome",
    "Payment", "PaymentError", "PaymentEvent", "PaymentNotFound", "PaymentProcessor",
    "PaymentService", "PaymentStatus", "PaymentWorker", "PermissionDenied", "Plan",
    "PlanTerms", "Posting", "Problem", "ProcessorCapabilities", "ProcessorRequest",
    "ProcessorResult",
    "RedisCache", "Role", "RolePolicy", "Router", "StoreUnavailable", "ValidationError",
    "ValidationPolicy", "allowed_actions", "correlation", "migrate", "open_service",
    "open_sync_service", "schedule", "testing",
    # named as public in its prose, and the types of pinned fields
    "BulkResult", "Cache", "DecryptionFailed", "EventSink", "FieldError", "HealthReport",
    "InstallmentStatus", "LocalCache", "MissingDriver", "Page", "PaymentStore", "PlanPage",
    "PlanStatus",
    "StoreError", "SyncPaymentService",
    "__version__",
}  # fmt: skip

MOVED = {
    "CircuitBreaker": "paymentorch.processors",
    "InMemoryPaymentStore": "paymentorch.adapters",
    "ManualClock": "paymentorch.clock",
    "OutboxMessage": "paymentorch.ports",
    "OutboxStats": "paymentorch.ports",
    "PaymentSummary": "paymentorch.domain.results",
    "SyncCache": "paymentorch.sync",
    "SyncInMemoryPaymentStore": "paymentorch.sync.adapters",
    "SyncLocalCache": "paymentorch.sync",
    "SyncPaymentStore": "paymentorch.sync",
    "SyncRedisCache": "paymentorch.sync",
    "open_store": "paymentorch.adapters",
}


def _modules_after(code: str) -> set[str]:
    """The modules loaded by a fresh interpreter that ran ``code``."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c",
         f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_loads_no_driver_and_not_the_contract_suite() -> None:
    """``import paymentorch`` (and its adapters, twin and errors, and the store classes
    that need no driver) loads no driver, no test tool and not ``paymentorch.testing``."""
    loaded = _modules_after(
        "import paymentorch, paymentorch.adapters, paymentorch.errors, paymentorch.sync,"
        " paymentorch.sync.adapters\n"
        "paymentorch.adapters.InMemoryPaymentStore, paymentorch.adapters.LocalCache\n"
        "paymentorch.adapters.RedisCache, paymentorch.adapters.open_store\n"
        "paymentorch.sync.adapters.SyncInMemoryPaymentStore"
    )
    heavy = {m for m in loaded if m.split(".")[0] in {*DRIVERS, "pytest", "hypothesis"}}
    assert heavy == set()
    assert not {m for m in loaded if m.startswith("paymentorch.testing")}


def test_a_store_brings_its_own_driver_only() -> None:
    """The SQLite store loads ``sqlite3``, and still nothing of PostgreSQL or Redis."""
    loaded = _modules_after("import paymentorch.adapters\npaymentorch.adapters.SQLitePaymentStore")
    assert "sqlite3" in loaded
    assert not {m for m in loaded if m.split(".")[0] in {"psycopg", "psycopg_pool", "redis"}}


def test_testing_is_imported_when_first_used() -> None:
    """``po.testing`` still works: the contract suite is imported on first use."""
    loaded = _modules_after(
        "import sys, paymentorch as po\n"
        "assert 'paymentorch.testing' not in sys.modules\n"
        "po.testing.SimulatedProcessor"
    )
    assert "paymentorch.testing" in loaded


def test_all_is_exactly_the_pinned_names() -> None:
    """``paymentorch.__all__`` holds the names the design pins, each of them importable."""
    assert len(po.__all__) == len(set(po.__all__))
    assert set(po.__all__) == PINNED
    for name in po.__all__:
        assert getattr(po, name) is not None


def test_classes_name_their_public_home() -> None:
    """Each exported class says ``paymentorch`` (an error ``paymentorch.errors``) is where
    it lives, and is found there: tracebacks, the docs and pickle agree."""
    for name in po.__all__:
        value = getattr(po, name)
        if not isinstance(value, type):
            continue
        home = "paymentorch.errors" if name in paymentorch.errors.__all__ else "paymentorch"
        assert value.__module__ == home, name
        assert getattr(importlib.import_module(home), value.__qualname__) is value
    status = pickle.loads(pickle.dumps(po.PaymentStatus.CONFIRMED))  # noqa: S301 - our own
    assert status is po.PaymentStatus.CONFIRMED
    error = pickle.loads(pickle.dumps(po.StoreUnavailable("down", limit="deadline")))  # noqa: S301
    assert (type(error), error.limit) == (po.StoreUnavailable, "deadline")


def test_errors_live_in_paymentorch_errors() -> None:
    """Every error ``paymentorch`` exports is the same class in ``paymentorch.errors``."""
    exported = {
        name
        for name in po.__all__
        if isinstance(value := getattr(po, name), type) and issubclass(value, Exception)
    }
    assert exported == set(paymentorch.errors.__all__) - {"FieldError"}
    for name in paymentorch.errors.__all__:
        assert getattr(paymentorch.errors, name) is getattr(po, name)


@pytest.mark.parametrize(("name", "home"), sorted(MOVED.items()))
def test_a_moved_name_warns_and_still_works(name: str, home: str) -> None:
    """The old top-level spelling gives the same object, with a warning naming its home."""
    with pytest.warns(DeprecationWarning, match=rf"paymentorch\.{name} .* from {home} "):
        value = getattr(po, name)
    assert value is getattr(importlib.import_module(home), name)


def test_from_import_of_a_moved_name_warns() -> None:
    """``from paymentorch import ManualClock`` warns too, at the importing line."""
    with pytest.warns(DeprecationWarning, match="paymentorch.clock") as caught:
        from paymentorch import ManualClock
    assert ManualClock is importlib.import_module("paymentorch.clock").ManualClock
    assert caught[0].filename == __file__


def test_pinned_names_do_not_warn() -> None:
    """Nothing the design pins warns, ``po.testing`` included."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in po.__all__:
            getattr(po, name)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        po.Nothing  # noqa: B018


def test_stores_sit_side_by_side_in_adapters() -> None:
    """``paymentorch.adapters`` holds each store and cache class of its backend's package,
    and the old module paths still import them."""
    from paymentorch import adapters
    from paymentorch.adapters import cache, encrypted, memory, redis, redis_cache, sqlite

    assert adapters.InMemoryPaymentStore is memory.InMemoryPaymentStore
    assert adapters.SQLitePaymentStore is sqlite.SQLitePaymentStore
    assert adapters.LocalCache is cache.LocalCache is po.LocalCache
    assert adapters.RedisCache is redis.RedisCache is redis_cache.RedisCache is po.RedisCache
    assert adapters.EncryptedStore is encrypted.EncryptedStore
    assert set(adapters.__all__) <= set(dir(adapters))
    with pytest.raises(AttributeError):
        adapters.Nothing  # noqa: B018


def test_the_postgres_store_sits_beside_them() -> None:
    """``paymentorch.adapters.PostgresPaymentStore`` (with psycopg installed) is the one
    of ``paymentorch.adapters.postgres``, and the twin's likewise."""
    pytest.importorskip("psycopg")
    from paymentorch import adapters
    from paymentorch.adapters import postgres
    from paymentorch.sync import adapters as sync_adapters
    from paymentorch.sync.adapters import postgres as sync_postgres

    assert adapters.PostgresPaymentStore is postgres.PostgresPaymentStore
    assert sync_adapters.SyncPostgresPaymentStore is sync_postgres.SyncPostgresPaymentStore


def test_the_twin_is_laid_out_as_the_async_package() -> None:
    """Every generated module of ``paymentorch.sync`` sits where its source sits under
    ``paymentorch``; the old private ``paymentorch._sync`` names still import."""
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["unasyncd"]["files"]
    assert "src/paymentorch/service.py" in files
    for source, twin in files.items():
        assert twin == source.replace("src/paymentorch/", "src/paymentorch/sync/", 1)
        assert (ROOT / twin).exists(), twin
    from paymentorch import sync
    from paymentorch._sync.ports import SyncPaymentStore

    assert SyncPaymentStore is sync.SyncPaymentStore
