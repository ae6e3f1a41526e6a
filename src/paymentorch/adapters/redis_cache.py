"""The Redis cache's module before it became ``paymentorch.adapters.redis``: an alias."""

from paymentorch.adapters.redis import RedisCache, SyncRedisCache

__all__ = ["RedisCache", "SyncRedisCache"]
