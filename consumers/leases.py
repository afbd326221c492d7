"""Dividing the partitions among consumer processes with leases in the store.

Every tick (a third of the lease TTL, at most 1 s) a consumer heartbeats its
membership, renews its leases, and moves toward its fair share: with ``n``
live members sorted by id, member ``i`` should hold ``P // n`` partitions,
plus one when ``i < P % n``. Over its share it hands partitions back
gracefully; under it, it takes free ones. A consumer that dies stops renewing:
its leases expire after the TTL and the others take them. One that stops on
SIGTERM releases everything at once, so the others take over on their next tick.
Single-active-consumer queues remain the safety net while leases move.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from gateway.core.errors import StoreUnavailable
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
GROUP = "consumers"


def lease_key(partition: int) -> str:
    return f"lease:{partition}"


def fair_share(partitions: int, members: list[str], me: str) -> int:
    if me not in members:
        members = sorted([*members, me])
    n = len(members)
    i = members.index(me)
    return partitions // n + (1 if i < partitions % n else 0)


class LeaseManager:
    def __init__(
        self,
        store: Store,
        me: str,
        partitions: int,
        *,
        ttl: float,
        on_acquired: Callable[[int], Awaitable[None]],
        on_release: Callable[[int], Awaitable[None]],
        on_lost: Callable[[int], Awaitable[None]],
    ) -> None:
        self._store = store
        self.me = me
        self._partitions = partitions
        self._ttl = ttl
        self._on_acquired = on_acquired
        self._on_release = on_release
        self._on_lost = on_lost
        self.held: set[int] = set()
        self._last_renewed = time.monotonic()
        self.tick_interval = min(1.0, ttl / 3)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except StoreUnavailable as exc:
                await self._store_trouble(exc)
            except Exception:
                log.exception("lease_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_interval)

    async def _store_trouble(self, exc: Exception) -> None:
        stale = time.monotonic() - self._last_renewed
        log.warning("lease_store_unavailable", error=str(exc), seconds_since_renewal=round(stale, 1))
        if stale > self._ttl * 0.8 and self.held:
            # Our leases may have expired; someone else may own these partitions now.
            for p in sorted(self.held):
                await self._lose(p)

    async def tick(self) -> None:
        await self._store.heartbeat(GROUP, self.me, self._ttl)
        await self._renew()
        members = await self._store.members(GROUP)
        target = fair_share(self._partitions, members, self.me)
        if len(self.held) > target:
            for p in sorted(self.held, reverse=True)[: len(self.held) - target]:
                await self.release(p)
        elif len(self.held) < target:
            await self._acquire(target - len(self.held))

    async def _renew(self) -> None:
        held = sorted(self.held)
        if not held:
            self._last_renewed = time.monotonic()
            return
        results = await self._store.renew_leases([lease_key(p) for p in held], self.me, self._ttl)
        self._last_renewed = time.monotonic()
        for p, ok in zip(held, results, strict=True):
            if not ok:
                await self._lose(p)

    async def _acquire(self, want: int) -> None:
        owners = await self._store.lease_owners([lease_key(p) for p in range(self._partitions)])
        free = [p for p, owner in enumerate(owners) if owner is None]
        # Start from a member-specific offset so joiners do not all race for partition 0.
        offset = hash(self.me) % max(1, self._partitions)
        free.sort(key=lambda p: (p - offset) % self._partitions)
        for p in free:
            if want <= 0:
                return
            if await self._store.acquire_lease(lease_key(p), self.me, self._ttl):
                self.held.add(p)
                want -= 1
                try:
                    await self._on_acquired(p)
                except Exception:
                    log.exception("partition_start_failed", partition=p)
                    self.held.discard(p)
                    await self._store.release_lease(lease_key(p), self.me)
                    continue
                log.info("partition_acquired", partition=p, held=len(self.held))

    async def release(self, p: int) -> None:
        """Graceful handover: drain, then let the lease go."""
        await self._on_release(p)
        self.held.discard(p)
        await self._store.release_lease(lease_key(p), self.me)
        log.info("partition_released", partition=p, held=len(self.held))

    async def _lose(self, p: int) -> None:
        self.held.discard(p)
        log.warning("partition_lease_lost", partition=p)
        await self._on_lost(p)

    async def release_all(self) -> None:
        await asyncio.gather(*(self.release(p) for p in sorted(self.held)))
        try:
            await self._store.leave(GROUP, self.me)
        except StoreUnavailable as exc:
            log.warning("leave_failed", error=str(exc))
