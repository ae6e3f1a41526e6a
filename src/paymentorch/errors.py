"""Every error paymentorch raises, each also importable as ``paymentorch.<name>``.

Every ``PaymentError`` has a stable ``code`` string, and
``paymentorch.http.problem_details`` maps each to an RFC 9457 body::

    PaymentError
    ├── ValidationError(PaymentError, ValueError)    .errors: tuple[FieldError, ...]
    ├── PaymentNotFound(PaymentError, LookupError)   .payment_id
    ├── InvalidTransition                            .payment_id, .status, .action
    ├── IdempotencyConflict                          .key
    ├── PermissionDenied                             .actor_id, .action
    ├── AmountExceeded                               .payment_id, .requested, .available
    ├── CreditLimitExceeded                          .customer_id, .limit, .exposure, .requested
    ├── StoreUnavailable                             .limit; the backend could not be reached
    └── StoreError                                   a write the store refused
        └── DecryptionFailed                         .payment_id, .field
    MissingDriver(ImportError)                       a backend's driver is not installed
"""

from paymentorch.adapters._require import MissingDriver
from paymentorch.crypto import DecryptionFailed
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

__all__ = [
    "AmountExceeded",
    "CreditLimitExceeded",
    "DecryptionFailed",
    "FieldError",
    "IdempotencyConflict",
    "InvalidTransition",
    "MissingDriver",
    "PaymentError",
    "PaymentNotFound",
    "PermissionDenied",
    "StoreError",
    "StoreUnavailable",
    "ValidationError",
]

# Nicer names in tracebacks and the docs: the errors' public home, not where they are defined.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
