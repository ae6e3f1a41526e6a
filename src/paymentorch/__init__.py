"""paymentorch: embeddable Buy-Now-Pay-Later payment orchestration.

Open a service with ``await paymentorch.open_service(url)``; see the README for a tour.
"""

from paymentorch._migrate import migrate
from paymentorch._open import open_service, open_store
from paymentorch._version import __version__
from paymentorch.adapters._require import MissingDriver
from paymentorch.adapters.cache import LocalCache
from paymentorch.adapters.memory import InMemoryPaymentStore
from paymentorch.adapters.redis import RedisCache, SyncRedisCache
from paymentorch.bus import InMemoryEventBus
from paymentorch.clock import ManualClock
from paymentorch.crypto import DecryptionFailed, FieldEncryption
from paymentorch.domain import (
    Actor,
    AmountExceeded,
    AuditEntry,
    CreditLimitExceeded,
    FieldError,
    IdempotencyConflict,
    InvalidTransition,
    NewPayment,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentError,
    PaymentEvent,
    PaymentNotFound,
    PaymentStatus,
    PermissionDenied,
    Role,
    RolePolicy,
    StoreError,
    StoreUnavailable,
    ValidationError,
    ValidationPolicy,
    correlation,
)
from paymentorch.domain.actions import allowed_actions
from paymentorch.domain.credit import CreditPolicy
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
from paymentorch.domain.results import BulkResult, HealthReport, Page, PaymentSummary
from paymentorch.outbox import OutboxRelay
from paymentorch.ports import (
    Cache,
    EventSink,
    OutboxMessage,
    OutboxStats,
    PaymentProcessor,
    PaymentStore,
)
from paymentorch.processors import CircuitBreaker, Router
from paymentorch.service import PaymentService
from paymentorch.sync import (
    SyncCache,
    SyncLocalCache,
    SyncPaymentService,
    SyncPaymentStore,
    open_sync_service,
)
from paymentorch.sync.adapters.memory import SyncInMemoryPaymentStore
from paymentorch.worker import PaymentWorker

__all__ = [
    "Actor",
    "AmountExceeded",
    "AuditEntry",
    "BulkResult",
    "Cache",
    "CircuitBreaker",
    "CreditLimitExceeded",
    "CreditPolicy",
    "DecryptionFailed",
    "EventSink",
    "FieldEncryption",
    "FieldError",
    "HealthReport",
    "IdempotencyConflict",
    "InMemoryEventBus",
    "InMemoryPaymentStore",
    "Installment",
    "InstallmentStatus",
    "InvalidTransition",
    "LateFee",
    "LateFeePolicy",
    "LocalCache",
    "ManualClock",
    "MissingDriver",
    "NewPayment",
    "Operation",
    "OperationKind",
    "OperationStatus",
    "OutboxMessage",
    "OutboxRelay",
    "OutboxStats",
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
    "PaymentSummary",
    "PaymentWorker",
    "PermissionDenied",
    "Plan",
    "PlanStatus",
    "PlanTerms",
    "ProcessorCapabilities",
    "ProcessorRequest",
    "ProcessorResult",
    "RedisCache",
    "Role",
    "RolePolicy",
    "Router",
    "StoreError",
    "StoreUnavailable",
    "SyncCache",
    "SyncInMemoryPaymentStore",
    "SyncLocalCache",
    "SyncPaymentService",
    "SyncPaymentStore",
    "SyncRedisCache",
    "ValidationError",
    "ValidationPolicy",
    "__version__",
    "allowed_actions",
    "correlation",
    "migrate",
    "open_service",
    "open_store",
    "open_sync_service",
    "schedule",
    "testing",
]

from paymentorch import testing
