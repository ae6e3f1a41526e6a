"""paymentorch: embeddable Buy-Now-Pay-Later payment orchestration.

Open a service with ``await paymentorch.open_service(url)``; see the README for a tour.

Here are the names the design pins. The stores and caches are side by side in
``paymentorch.adapters``, the blocking twin is ``paymentorch.sync``, the errors are
also in ``paymentorch.errors``, and the contract suite, ``paymentorch.testing``, is
imported when first used. Importing paymentorch imports no driver.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from paymentorch._migrate import migrate
from paymentorch._open import open_service
from paymentorch._version import __version__
from paymentorch.adapters.cache import LocalCache
from paymentorch.adapters.redis import RedisCache
from paymentorch.bus import InMemoryEventBus
from paymentorch.crypto import FieldEncryption
from paymentorch.domain import (
    Actor,
    AuditEntry,
    NewPayment,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Role,
    RolePolicy,
    ValidationPolicy,
    correlation,
)
from paymentorch.domain.actions import allowed_actions
from paymentorch.domain.collections import AgingReport, CollectionPolicy, PlanPage
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.integrity import IntegrityReport, Problem
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry, Posting
from paymentorch.domain.plans import (
    Installment,
    InstallmentStatus,
    LateFee,
    LateFeePolicy,
    Plan,
    PlanStatus,
    PlanTerms,
    schedule,
)
from paymentorch.domain.processing import (
    Outcome,
    ProcessorCapabilities,
    ProcessorRequest,
    ProcessorResult,
)
from paymentorch.domain.results import BulkResult, HealthReport, Page
from paymentorch.errors import (
    AmountExceeded,
    CreditLimitExceeded,
    DecryptionFailed,
    FieldError,
    IdempotencyConflict,
    InvalidTransition,
    MissingDriver,
    PaymentError,
    PaymentNotFound,
    PermissionDenied,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from paymentorch.outbox import OutboxRelay
from paymentorch.ports import Cache, EventSink, PaymentProcessor, PaymentStore
from paymentorch.processors import Router
from paymentorch.service import PaymentService
from paymentorch.sync import SyncPaymentService, open_sync_service
from paymentorch.worker import PaymentWorker

if TYPE_CHECKING:  # imported on first use (the module's __getattr__), for type checkers here
    from paymentorch import testing as testing
    from paymentorch._open import open_store as open_store
    from paymentorch.adapters.memory import InMemoryPaymentStore as InMemoryPaymentStore
    from paymentorch.clock import ManualClock as ManualClock
    from paymentorch.domain.results import PaymentSummary as PaymentSummary
    from paymentorch.ports import OutboxMessage as OutboxMessage
    from paymentorch.ports import OutboxStats as OutboxStats
    from paymentorch.processors import CircuitBreaker as CircuitBreaker
    from paymentorch.sync import SyncCache as SyncCache
    from paymentorch.sync import SyncLocalCache as SyncLocalCache
    from paymentorch.sync import SyncPaymentStore as SyncPaymentStore
    from paymentorch.sync import SyncRedisCache as SyncRedisCache
    from paymentorch.sync.adapters.memory import (
        SyncInMemoryPaymentStore as SyncInMemoryPaymentStore,
    )

__all__ = [
    "Account",
    "AccountKind",
    "Actor",
    "AgingReport",
    "AmountExceeded",
    "AuditEntry",
    "BulkResult",
    "Cache",
    "CollectionPolicy",
    "CreditLimitExceeded",
    "CreditPolicy",
    "DecryptionFailed",
    "EventSink",
    "FieldEncryption",
    "FieldError",
    "HealthReport",
    "IdempotencyConflict",
    "InMemoryEventBus",
    "Installment",
    "InstallmentStatus",
    "IntegrityReport",
    "InvalidTransition",
    "JournalEntry",
    "LateFee",
    "LateFeePolicy",
    "LocalCache",
    "MissingDriver",
    "NewPayment",
    "Operation",
    "OperationKind",
    "OperationStatus",
    "OutboxRelay",
    "Outcome",
    "Page",
    "Payment",
    "PaymentError",
    "PaymentEvent",
    "PaymentNotFound",
    "PaymentProcessor",
    "PaymentService",
    "PaymentStatus",
    "PaymentStore",
    "PaymentWorker",
    "PermissionDenied",
    "Plan",
    "PlanPage",
    "PlanStatus",
    "PlanTerms",
    "Posting",
    "Problem",
    "ProcessorCapabilities",
    "ProcessorRequest",
    "ProcessorResult",
    "RedisCache",
    "Role",
    "RolePolicy",
    "Router",
    "StoreError",
    "StoreUnavailable",
    "SyncPaymentService",
    "ValidationError",
    "ValidationPolicy",
    "__version__",
    "allowed_actions",
    "correlation",
    "migrate",
    "open_service",
    "open_sync_service",
    "schedule",
    "testing",
]

_MOVED = {
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
"""Names the design does not pin, once exported here: where each lives now. The old
spelling still works, with a ``DeprecationWarning``, until a later release."""


def __getattr__(name: str) -> Any:
    """``testing``, imported on first use; a moved name, with a warning (PEP 562)."""
    if name == "testing":
        return importlib.import_module("paymentorch.testing")
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'paymentorch' has no attribute {name!r}")
    warnings.warn(
        f"paymentorch.{name} is deprecated and goes in a later release: "
        f"import it from {home} ({home}.{name})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), "testing"})


# Nicer names in tracebacks and the docs, as svcs does: the classes' public home, not the
# private module they are defined in (the errors' home is paymentorch.errors).
for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, type) and _value.__module__ != "paymentorch.errors":
        _value.__module__ = __name__
del _name, _value
