"""Run a fake as a separate process (for end-to-end tests of separate gateway processes).

::

    async with run_fake("tests.fakes.slack_api", "--token", "xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        await client.chat_postMessage(channel="C1", text="hi")
        [call] = await fake.wait_for_calls(1, method="chat.postMessage")

The child is ``python -m <module> --port 0 <args...>`` started from the repository root; it prints
``READY <base_url>`` once listening and is stopped with SIGTERM on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.fakes.base import Call, InjectionKind

__all__ = ["FakeProcess", "run_fake"]

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL = 0.05


@dataclass
class FakeProcess:
    """Handle on a fake running in a child process; talks to its control endpoints."""

    base_url: str
    root_url: str
    process: asyncio.subprocess.Process
    session: aiohttp.ClientSession
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def calls(self, method: str | None = None) -> list[Call]:
        params = {"method": method} if method else None
        async with self.session.get(f"{self.root_url}/_calls", params=params) as resp:
            resp.raise_for_status()
            data = await resp.json()
        return [Call.from_json(c) for c in data["calls"]]

    async def wait_for_calls(self, n: int, method: str | None = None, timeout: float = 10.0) -> list[Call]:
        """Poll ``GET /_calls`` every 50 ms until at least ``n`` calls (of ``method``) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            calls = await self.calls(method)
            if len(calls) >= n:
                return calls
            if time.monotonic() >= deadline:
                received = [f"{c.method}[{c.status}]" for c in await self.calls()]
                raise AssertionError(
                    f"fake process {self.base_url}: timed out after {timeout}s waiting for {n} "
                    f"call(s)" + (f" of {method!r}" if method else "") + f"; received {received}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def post_control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to a control endpoint (``/_inject``, ``/_reset``, ``/_script`` ...)."""
        async with self.session.post(f"{self.root_url}{path}", json=body) as resp:
            data: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"{path} rejected {body}: {data}")
            return data

    async def inject(
        self,
        kind: InjectionKind,
        n: int = 1,
        retry_after: int = 1,
        status: int = 500,
        method: str | None = None,
        seconds: float = 1.0,
    ) -> None:
        await self.post_control(
            "/_inject",
            {
                "kind": kind,
                "n": n,
                "retry_after": retry_after,
                "status": status,
                "method": method,
                "seconds": seconds,
            },
        )

    async def rate_limit_next(self, n: int = 1, retry_after: int = 1, method: str | None = None) -> None:
        await self.inject("rate_limit", n=n, retry_after=retry_after, method=method)

    async def fail_next(self, n: int = 1, status: int = 500, method: str | None = None) -> None:
        await self.inject("fail", n=n, status=status, method=method)

    async def reset(self) -> None:
        await self.post_control("/_reset", {})


async def _drain(stream: asyncio.StreamReader | None, sink: list[str] | None) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        if sink is not None:
            sink.append(line.decode(errors="replace").rstrip("\n"))


@contextlib.asynccontextmanager
async def run_fake(module: str, *args: str, startup_timeout: float = 15.0) -> AsyncIterator[FakeProcess]:
    """Start ``python -m module --port 0 *args``; yield a :class:`FakeProcess` once READY."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--port",
        "0",
        *args,
        cwd=str(REPO_ROOT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr_lines: list[str] = []
    tasks = [asyncio.create_task(_drain(proc.stderr, stderr_lines))]
    try:
        base_url, stdout_seen = await _read_ready(proc, startup_timeout)
        if base_url is None:
            await _terminate(proc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await tasks[0]
            raise RuntimeError(
                f"fake {module} did not print READY (returncode={proc.returncode}); "
                f"stdout={stdout_seen!r}; stderr:\n" + "\n".join(stderr_lines)
            )
        tasks.append(asyncio.create_task(_drain(proc.stdout, None)))
        parts = urlsplit(base_url)
        root_url = f"{parts.scheme}://{parts.netloc}"
        async with aiohttp.ClientSession() as session:
            yield FakeProcess(base_url, root_url, proc, session, stderr_lines)
    finally:
        await _terminate(proc)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _read_ready(proc: asyncio.subprocess.Process, timeout: float) -> tuple[str | None, list[str]]:
    """Return the URL from the ``READY <url>`` line, or None (and what stdout said) on failure."""
    assert proc.stdout is not None
    seen: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while raw := await proc.stdout.readline():
                line = raw.decode(errors="replace").strip()
                if line.startswith("READY "):
                    return line.split(" ", 1)[1].strip(), seen
                seen.append(line)
    return None, seen


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        async with asyncio.timeout(5):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
