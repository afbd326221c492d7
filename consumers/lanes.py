"""Keyed lanes: one item at a time per key, keys in parallel.

A lane is created on its key's first item and retires itself when its buffer
is empty, with no ``await`` between the emptiness check and the removal, so an
item can never be appended to a lane that has already stopped (the
cancellation race DESIGN.md describes). ``batch`` decides how many buffered
items one run takes: one (the ``queue`` policy) or all (``collect``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Lanes(Generic[T]):
    def __init__(
        self,
        run: Callable[[str, list[T]], Awaitable[None]],
        *,
        collect: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self._run = run
        self._collect = collect
        self._buffers: dict[str, deque[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._buffers)

    def pending(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def submit(self, key: str, item: T) -> None:
        buf = self._buffers.get(key)
        if buf is not None:
            buf.append(item)
            return
        buf = deque((item,))
        self._buffers[key] = buf
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._drain(key, buf))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str, buf: deque[T]) -> None:
        while True:
            take = len(buf) if self._collect(key) else 1
            items = [buf[i] for i in range(take)]
            try:
                await self._run(key, items)
            except asyncio.CancelledError:
                raise
            except Exception:  # run() settles its own items; a bug here must not kill the lane silently
                log.exception("lane_run_failed", key=key)
            for _ in range(take):
                buf.popleft()
            if not buf:
                del self._buffers[key]
                if not self._buffers:
                    self._idle.set()
                return

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every lane has finished; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._buffers.clear()
        self._idle.set()
