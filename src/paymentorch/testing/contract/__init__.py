"""The store contract: every backend must pass these, the in-memory one included.

The suite is a test class per role of a store (``TestCreation``, ``TestChanges``,
``TestOutbox``, ...), each test taking a ``backend`` fixture that returns a
``paymentorch.testing.Backend``. Import them all into a test module::

    from paymentorch.testing.contract import *  # noqa: F403

and pytest runs every class with that module's ``backend`` fixture; or subclass only the
roles your store implements, each with its own ``backend`` fixture if you like. Each
class is marked for pytest-asyncio, so the suite runs in its default strict mode. Tests
of the store itself (``test_store_*``) call the port directly, as a service never would,
so that a store which ignores a guard fails here rather than in production.
"""

from paymentorch.testing.contract.aging import TestAging
from paymentorch.testing.contract.books import TestBooks
from paymentorch.testing.contract.changes import TestChanges
from paymentorch.testing.contract.charge_off import TestChargeOff
from paymentorch.testing.contract.collections import TestCollections
from paymentorch.testing.contract.concurrency import TestConcurrency
from paymentorch.testing.contract.creation import TestCreation
from paymentorch.testing.contract.credit import TestCredit
from paymentorch.testing.contract.maintenance import TestMaintenance
from paymentorch.testing.contract.money import TestMoney
from paymentorch.testing.contract.outbox import TestOutbox
from paymentorch.testing.contract.plans import TestPlans
from paymentorch.testing.contract.processing import TestProcessing
from paymentorch.testing.contract.reads import TestReads
from paymentorch.testing.contract.transitions import TestTransitions
from paymentorch.testing.contract.work_queue import TestWorkQueue

__all__ = [
    "TestAging",
    "TestBooks",
    "TestChanges",
    "TestChargeOff",
    "TestCollections",
    "TestConcurrency",
    "TestCreation",
    "TestCredit",
    "TestMaintenance",
    "TestMoney",
    "TestOutbox",
    "TestPlans",
    "TestProcessing",
    "TestReads",
    "TestTransitions",
    "TestWorkQueue",
]
