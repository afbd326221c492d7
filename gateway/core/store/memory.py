"""The in-process store twin: same semantics as Redis, gone when the process exits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.core.errors import StoreUnavailable

#: Redis's answer to a string command on a list or hash key; the twin gives the same (a test's way to fail one command).
WRONGTYPE = "Redis error: WRONGTYPE Operation against a key holding the wrong kind of value"


class MemoryStore:
    def __init__(self, namespace: str = "gw") -> None:
        self.namespace = namespace
        self._data: dict[str, Any] = {}
        self._expires: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    def _k(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _live(self, key: str) -> Any:
        exp = self._expires.get(key)
        if exp is not None and exp <= time.monotonic():
            self._data.pop(key, None)
            self._expires.pop(key, None)
        return self._data.get(key)

    def _set(self, key: str, value: Any, ttl: float | None) -> None:
        self._data[key] = value
        if ttl is None:
            self._expires.pop(key, None)
        else:
            self._expires[key] = time.monotonic() + ttl

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        k = self._k(key)
        current = self._live(k)
        if current is not None:
            if not isinstance(current, str):  # SET ... GET on a list or hash: Redis answers WRONGTYPE
                raise StoreUnavailable(WRONGTYPE)
            return current
        self._set(k, value, ttl)
        return None

    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        self._set(self._k(key), value, ttl)

    def put_soon(self, key: str, value: str, ttl: float) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._set(self._k(key), value, ttl)
        fut.set_result(None)
        return fut

    async def get(self, key: str) -> str | None:
        return await self.lookup(key)

    def lookup(self, key: str) -> asyncio.Future[str | None]:
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        value = self._live(self._k(key))
        fut.set_result(None if value is None else str(value))
        return fut

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(self._k(key), None)
            self._expires.pop(self._k(key), None)

    async def expire(self, key: str, ttl: float) -> None:
        k = self._k(key)
        if self._live(k) is not None:
            self._expires[k] = time.monotonic() + ttl

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
        if items:
            k = self._k(key)
            lst: list[str] = self._live(k) or []
            lst.extend(items)
            del lst[: max(0, len(lst) - keep)]
            self._data[k] = lst
            if ttl is not None:
                self._expires[k] = time.monotonic() + ttl
        for marker in markers:
            self._set(self._k(marker), "1", marker_ttl)

    async def tail(self, key: str, n: int) -> list[str]:
        lst: list[str] = self._live(self._k(key)) or []
        return list(lst[-n:]) if n > 0 else []

    async def length(self, key: str) -> int:
        return len(self._live(self._k(key)) or [])

    async def hput(self, key: str, field: str, value: str, ttl: float | None = None) -> None:
        k = self._k(key)
        h: dict[str, str] = self._live(k) or {}  # an expired hash starts empty, as in Redis
        h[field] = value
        self._data[k] = h
        if ttl is not None:
            self._expires[k] = time.monotonic() + ttl

    async def hget(self, key: str, field: str) -> str | None:
        h: dict[str, str] = self._live(self._k(key)) or {}
        return h.get(field)

    async def hmget(self, key: str, fields: Sequence[str]) -> list[str | None]:
        h: dict[str, str] = self._live(self._k(key)) or {}
        return [h.get(f) for f in fields]

    async def hclaim(self, key: str, field: str, value: str) -> str | None:
        k = self._k(key)
        h: dict[str, str] = self._live(k) or {}
        if field in h:
            return h[field]
        h[field] = value
        self._data[k] = h
        return None

    async def hall(self, key: str) -> dict[str, str]:
        return dict(self._live(self._k(key)) or {})

    async def hdel(self, key: str, field: str) -> bool:
        h: dict[str, str] = self._live(self._k(key)) or {}
        return h.pop(field, None) is not None

    async def hincr(self, key: str, increments: Mapping[str, int], ttl: float | None = None) -> dict[str, int]:
        if not increments:
            return {}
        k = self._k(key)
        h: dict[str, str] = self._live(k) or {}
        for field, by in increments.items():
            h[field] = str(int(h.get(field, "0")) + by)
        self._data[k] = h
        if ttl is not None:
            self._expires[k] = time.monotonic() + ttl
        return {field: int(h[field]) for field in increments}

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        k = self._k(key)
        current = self._live(k)
        if current is not None and current != owner:
            return False
        self._set(k, owner, ttl)
        return True

    async def renew_leases(self, keys: Sequence[str], owner: str, ttl: float) -> list[bool]:
        out = []
        for key in keys:
            k = self._k(key)
            held = self._live(k) == owner
            if held:
                self._set(k, owner, ttl)
            out.append(held)
        return out

    async def release_lease(self, key: str, owner: str) -> bool:
        k = self._k(key)
        if self._live(k) == owner:
            await self.delete(key)
            return True
        return False

    async def lease_owners(self, keys: Sequence[str]) -> list[str | None]:
        return [self._live(self._k(k)) for k in keys]

    async def heartbeat(self, group: str, member: str, ttl: float) -> None:
        self._data.setdefault(self._k(f"members:{group}"), {})[member] = time.monotonic() + ttl

    async def leave(self, group: str, member: str) -> None:
        self._data.get(self._k(f"members:{group}"), {}).pop(member, None)

    async def members(self, group: str) -> list[str]:
        now = time.monotonic()
        group_map: dict[str, float] = self._data.get(self._k(f"members:{group}"), {})
        for m in [m for m, exp in group_map.items() if exp <= now]:
            del group_map[m]
        return sorted(group_map)

    async def reserve_token(self, key: str, rate: float, burst: float) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate) - 1
        self._buckets[key] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / rate
