"""Warm agent instances keyed by (agent, conversation key).

``on_session_enter`` runs once per warm instance before its first event;
``on_session_leave`` on idle release, eviction (bounded pool, least recently
used first) or shutdown. An instance in the middle of a turn is never evicted.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import structlog

from agents import base
from agents.context import SessionContext, State
from agents.registry import AgentFactory
from gateway.core.sessions import DEFAULT
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)


@dataclass
class Instance:
    agent: base.AgentLike
    session: SessionContext
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    #: Set once on_session_enter finished; concurrent acquirers wait for it.
    entered: asyncio.Event = field(default_factory=asyncio.Event)


class AgentPool:
    def __init__(
        self,
        factories: dict[str, AgentFactory],
        store: Store,
        *,
        max_size: int = 10_000,
        idle_release: float = 1800.0,
        memory_ttl: float | None = None,
    ) -> None:
        self._factories = factories
        self._store = store
        self._memory_ttl = memory_ttl
        self._max = max_size
        self._idle = idle_release
        self._instances: OrderedDict[tuple[str, str], Instance] = OrderedDict()

    def __len__(self) -> int:
        return len(self._instances)

    def knows(self, agent: str) -> bool:
        return agent in self._factories

    async def acquire(self, agent: str, key: str, *, session: str = DEFAULT, state: State | None = None) -> Instance:
        """The warm instance for (agent, key), entered if new (in named ``session``, with its ``state``).
        Release it with :meth:`release`."""
        ident = (agent, key)
        inst = self._instances.get(ident)
        if inst is None:
            factory = self._factories[agent]
            context = SessionContext(
                agent,
                key,
                self._store,
                State() if state is None else state,
                memory_ttl=self._memory_ttl,
                session_name=session,
            )
            inst = Instance(factory.instance(), context)
            self._instances[ident] = inst
            inst.busy += 1
            try:
                await base.enter(inst.agent, inst.session)
            except BaseException:
                inst.busy -= 1
                self._instances.pop(ident, None)
                inst.entered.set()
                raise
            inst.entered.set()
            await self._evict_over_limit()
            return inst
        inst.busy += 1
        self._instances.move_to_end(ident)
        if not inst.entered.is_set():
            await inst.entered.wait()
            if self._instances.get(ident) is not inst:  # its enter failed: start over
                inst.busy -= 1
                return await self.acquire(agent, key, session=session, state=state)
        return inst

    def release(self, inst: Instance) -> None:
        inst.busy -= 1
        inst.last_used = time.monotonic()

    async def _leave(self, ident: tuple[str, str], inst: Instance, why: str) -> None:
        self._instances.pop(ident, None)
        try:
            await base.leave(inst.agent, inst.session)
        except Exception:
            log.exception("session_leave_failed", agent=ident[0], conversation_key=ident[1], why=why)

    async def _evict_over_limit(self) -> None:
        while len(self._instances) > self._max:
            victim = next(((i, x) for i, x in self._instances.items() if not x.busy), None)
            if victim is None:
                return
            await self._leave(*victim, why="evicted")

    async def sweep(self) -> int:
        """Release instances idle longer than ``idle_release``; returns how many."""
        cutoff = time.monotonic() - self._idle
        idle = [(i, x) for i, x in self._instances.items() if not x.busy and x.last_used < cutoff]
        for ident, inst in idle:
            await self._leave(ident, inst, why="idle")
        return len(idle)

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        interval = max(0.05, min(60.0, self._idle / 4))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                await self.sweep()

    async def close(self) -> None:
        for ident, inst in list(self._instances.items()):
            await self._leave(ident, inst, why="shutdown")
