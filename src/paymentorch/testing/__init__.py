"""The contract suite that every ``PaymentStore`` passes, shipped so yours can run it too.

In a test module::

    from paymentorch.testing.contract import *  # noqa: F403

and define one fixture, ``backend``, returning a ``Backend``: a name and a factory that
opens a fresh, empty store (``shared=True`` when several processes can open the same
data, which adds the multi-process tests). The suite is a test class per role of a
store (``contract.TestOutbox``, ...): subclass just the roles your store implements,
with the ``backend`` fixture as a method if you like. The suite needs pytest-asyncio
and runs in its strict mode. A blocking store (the twin's, or your own) runs the same
suite through ``AsyncView``: ``Backend(name, functools.partial(open_async_view, opener,
url))``.

``SimulatedProcessor`` is the seed design's processor, with a ledger of what it really
executed; ``paymentorch.testing.processor_contract`` is the conformance kit that any
processor adapter runs, as the contract suite is for stores.
"""

from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._twin import AsyncView, open_async_view
from paymentorch.testing.simulated import SimulatedProcessor

__all__ = ["AsyncView", "Backend", "SimulatedProcessor", "open_async_view", "service_on"]
