"""The contract suite that every ``PaymentStore`` passes, shipped so yours can run it too.

In a test module::

    from paymentorch.testing.contract import *  # noqa: F403

and define two fixtures in ``conftest.py``: ``backend`` yields a ``Backend`` whose
``open_store()`` gives a fresh, empty store; ``shared_backend`` does the same for stores
that several processes can open by URL (its tests start processes and reopen the store).
The suite needs pytest-asyncio.
"""

from paymentorch.testing._backend import Backend, service_on

__all__ = ["Backend", "service_on"]
