"""The store: Redis (``REDIS_URL``) or the in-process twin."""

from gateway.core.store.base import Store

__all__ = ["Store"]
