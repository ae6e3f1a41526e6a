"""The pure core: values, rules and transitions. No I/O, no asyncio, no drivers."""

from paymentorch.domain.access import Actor, Role, RolePolicy
from paymentorch.domain.correlation import correlation, current_correlation_id
from paymentorch.domain.errors import (
    AmountExceeded,
    CreditLimitExceeded,
    FieldError,
    IdempotencyConflict,
    InvalidTransition,
    PaymentError,
    PaymentNotFound,
    PermissionDenied,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from paymentorch.domain.ids import uuid7
from paymentorch.domain.operations import Operation, OperationKind, OperationStatus
from paymentorch.domain.payment import (
    Payment,
    PaymentStatus,
    cancel,
    confirm,
    fail,
    refund,
    release_refund,
    reserve_refund,
    touched,
    transition,
)
from paymentorch.domain.records import (
    AuditEntry,
    Change,
    PaymentEvent,
    record_change,
    with_plan,
)
from paymentorch.domain.validation import (
    NewPayment,
    ValidationPolicy,
    ValidPayment,
    parse_payment_id,
)

__all__ = [
    "Actor",
    "AmountExceeded",
    "AuditEntry",
    "Change",
    "CreditLimitExceeded",
    "FieldError",
    "IdempotencyConflict",
    "InvalidTransition",
    "NewPayment",
    "Operation",
    "OperationKind",
    "OperationStatus",
    "Payment",
    "PaymentError",
    "PaymentEvent",
    "PaymentNotFound",
    "PaymentStatus",
    "PermissionDenied",
    "Role",
    "RolePolicy",
    "StoreError",
    "StoreUnavailable",
    "ValidPayment",
    "ValidationError",
    "ValidationPolicy",
    "cancel",
    "confirm",
    "correlation",
    "current_correlation_id",
    "fail",
    "parse_payment_id",
    "record_change",
    "refund",
    "release_refund",
    "reserve_refund",
    "touched",
    "transition",
    "uuid7",
    "with_plan",
]
