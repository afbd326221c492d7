"""``gateway serve --workers N``: N ingress processes on one port, one supervisor.

Each worker is a whole ``gateway serve`` (its own broker connection, store client and event loop) bound with
``SO_REUSEPORT``, so the kernel spreads new connections over them. The supervisor binds nothing and holds no
connection: it checks the port is free, starts the workers, restarts one that dies (with a backoff, so a
worker that cannot start does not spin), and on SIGTERM or Ctrl-C passes the signal on and waits for each to
drain within its grace period (SIGKILL after). Workers die with the supervisor (``PR_SET_PDEATHSIG``), so a
supervisor killed with SIGKILL leaves no orphan holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time

import structlog

from gateway.core.backoff import Backoff

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a worker: get SIGTERM when the supervisor goes away, however it went (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Supervisor:
    def __init__(self, workers: int, *, grace: float) -> None:
        self.workers = workers
        self.grace = grace
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False
        #: How many times a worker was started again after it died.
        self.restarts = 0

    async def _spawn(self, slot: int) -> asyncio.subprocess.Process:
        env = {**os.environ, "GATEWAY_SERVE_WORKERS": "1"}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "serve", "--worker", env=env)
        log.info("worker_started", slot=slot, pid=proc.pid)
        return proc

    async def _keep(self, slot: int) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while not self._stopping:
            started = time.monotonic()
            proc = self._procs[slot] = await self._spawn(slot)
            code = await proc.wait()
            if self._stopping:
                return
            if time.monotonic() - started > 60:
                backoff.reset()  # it ran a while: this is a crash, not a worker that cannot start
            delay = backoff.next_delay()
            self.restarts += 1
            log.warning("worker_exited", slot=slot, pid=proc.pid, status=code, restart_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)

    async def run(self, stop: asyncio.Event) -> int:
        self._stopped = asyncio.Event()
        log.info("supervisor_starting", workers=self.workers, pid=os.getpid())
        keepers = [asyncio.create_task(self._keep(slot)) for slot in range(self.workers)]
        await stop.wait()
        self._stopping = True
        self._stopped.set()
        log.info("supervisor_stopping", workers=len(self._procs), grace_seconds=self.grace)
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(self._reap(p) for p in self._procs.values()))
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        log.info("supervisor_stopped", statuses=codes)
        return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1

    async def _reap(self, proc: asyncio.subprocess.Process) -> int:
        try:
            return await asyncio.wait_for(proc.wait(), self.grace + 5)
        except TimeoutError:
            log.warning("worker_killed", pid=proc.pid, reason="did not stop within the grace period")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return await proc.wait()
