"""The contract suite that every ``PaymentStore`` passes, shipped so yours can run it too.

In a test module::

    from paymentorch.testing.contract import *  # noqa: F403

and define one fixture, ``backend``, returning a ``Backend``: a name and a factory that
opens a fresh, empty store (``shared=True`` when several processes can open the same
data, which adds the multi-process tests). The suite needs pytest-asyncio and runs in
its strict mode. A blocking store (the twin's, or your own) runs the same
suite through ``AsyncView``: ``Backend(name, functools.partial(open_async_view, opener,
url))``.
"""

from paymentorch.testing._backend import Backend, service_on
from paymentorch.testing._twin import AsyncView, open_async_view

__all__ = ["AsyncView", "Backend", "open_async_view", "service_on"]
