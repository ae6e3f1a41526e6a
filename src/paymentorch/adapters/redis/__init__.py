"""A cache shared by every process through Redis (redis-py), with a local tier kept
coherent by Redis pub/sub invalidations.

- ``cache``: ``RedisCache`` and its blocking form ``SyncRedisCache`` (both written by
  hand: the blocking one listens on a thread).
- ``tiers``: what both share: the Lua scripts and the local tier.

The driver is imported when a cache is built: a missing one raises ``MissingDriver``.
"""

from paymentorch.adapters.redis.cache import RedisCache, SyncRedisCache

__all__ = ["RedisCache", "SyncRedisCache"]
