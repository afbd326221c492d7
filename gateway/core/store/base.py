"""The store interface: everything that must outlive a process.

Dedupe keys, turn markers, conversation history, agent memory, partition
leases, consumer membership and rate-limit buckets. Two implementations pass
one contract suite (``tests/contract``): :mod:`gateway.core.store.redis` and the
in-process :mod:`gateway.core.store.memory` used by ``gateway dev`` without Redis.
Keys given to the store are relative; the store prefixes the namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Store(Protocol):
    namespace: str

    async def ping(self) -> bool: ...
    async def close(self) -> None: ...

    # Plain keys.
    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        """Set ``key`` if absent. None when claimed; otherwise the value already there."""
        ...

    async def put(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def put_soon(self, key: str, value: str, ttl: float) -> asyncio.Future[Any]:
        """``put`` that rides with the next batch of commands instead of starting one (Redis: within a few
        ms); the future settles when it is written. For writes nobody waits for (ingest's done mark)."""
        ...

    async def get(self, key: str) -> str | None: ...
    def lookup(self, key: str) -> asyncio.Future[str | None]:
        """Start a ``get`` now and await its answer later (no Task; the command joins this tick's batch)."""
        ...

    async def delete(self, *keys: str) -> None: ...
    async def expire(self, key: str, ttl: float) -> None:
        """``key`` (of any kind) expires ``ttl`` seconds from now; nothing when it does not exist."""
        ...

    # Lists (conversation history): append, keep the last ``keep``, read the last ``n``.
    async def push(
        self,
        key: str,
        items: Sequence[str],
        keep: int,
        *,
        markers: Sequence[str] = (),
        marker_ttl: float = 0,
        ttl: float | None = None,
    ) -> None:
        """Append ``items`` (keep the last ``keep``) and set each of ``markers`` to "1" for ``marker_ttl``
        seconds, all at once (one round trip: a turn's history and its done markers).

        With ``ttl`` the list expires ``ttl`` seconds after this push (each push with items refreshes
        it); without, an expiry set earlier stays as it was."""
        ...

    async def tail(self, key: str, n: int) -> list[str]: ...
    async def length(self, key: str) -> int: ...

    # Hashes (agent memory documents).
    async def hput(self, key: str, field: str, value: str, ttl: float | None = None) -> None:
        """Set one field; with ``ttl`` the whole hash expires ``ttl`` seconds after this write."""
        ...

    async def hget(self, key: str, field: str) -> str | None: ...
    async def hmget(self, key: str, fields: Sequence[str]) -> list[str | None]:
        """The values of ``fields`` (None for an absent one), in one command."""
        ...

    async def hclaim(self, key: str, field: str, value: str) -> str | None:
        """Set ``field`` if absent. None when claimed; otherwise the value already there (the expiry of
        the hash is left as it was)."""
        ...

    async def hall(self, key: str) -> dict[str, str]: ...
    async def hdel(self, key: str, field: str) -> bool: ...
    async def hincr(self, key: str, increments: Mapping[str, int], ttl: float | None = None) -> dict[str, int]:
        """Add to integer fields (absent ones start at 0), all at once; the new values. With ``ttl`` the
        hash expires ``ttl`` seconds after this write (usage counters, consumers/usage.py)."""
        ...

    # Leases: one owner per key until it expires or is released.
    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool: ...
    async def renew_leases(self, keys: Sequence[str], owner: str, ttl: float) -> list[bool]: ...
    async def release_lease(self, key: str, owner: str) -> bool: ...
    async def lease_owners(self, keys: Sequence[str]) -> list[str | None]: ...

    # Membership: who is alive in a group (heartbeats with expiry).
    async def heartbeat(self, group: str, member: str, ttl: float) -> None: ...
    async def leave(self, group: str, member: str) -> None: ...
    async def members(self, group: str) -> list[str]: ...

    # Token bucket shared across processes.
    async def reserve_token(self, key: str, rate: float, burst: float) -> float:
        """Take one token, going into debt if needed; return the seconds to wait before using it."""
        ...
