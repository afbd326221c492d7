"""Running real ``gateway`` processes for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp

from tests.support.waiting import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The variable each command's health port is read from (``GATEWAY_PORT`` for the others).
PORT_VARIABLES = {"consume": "GATEWAY_CONSUME_PORT", "discord": "GATEWAY_DISCORD_PORT"}


class GatewayProcess:
    """``python -m gateway.cli COMMAND`` with its own port and a log file."""

    def __init__(self, command: str, env: Mapping[str, str], *, name: str | None = None) -> None:
        """Listens on its port variable's value in ``env`` (``GATEWAY_CONSUME_PORT`` for consume,
        ``GATEWAY_DISCORD_PORT`` for discord, else ``GATEWAY_PORT``), or on a free port when ``env`` has none."""
        self.command = command
        variable = PORT_VARIABLES.get(command, "GATEWAY_PORT")
        self.port = int(env[variable]) if variable in env else free_port()
        self.name = name or command
        # One serve process unless a test asks for workers: tests count processes, pids and log lines.
        self.env = {
            **os.environ,
            "GATEWAY_SERVE_WORKERS": "1",
            **env,
            variable: str(self.port),
            "GATEWAY_LOG_FORMAT": "json",
        }
        self.log_path = Path(tempfile.mkstemp(prefix=f"gw-{self.name}-", suffix=".log")[1])
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, ready: bool = True, timeout: float = 20.0) -> GatewayProcess:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            self.command,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        path = "/readyz" if ready else "/healthz"
        try:
            await eventually(
                lambda: self._status(path),
                until=lambda s: s == 200,
                timeout=timeout,
                what=f"{self.name} {path} (log: {self.log_path})",
            )
        except BaseException:
            await self.kill()  # never leave a half-started gateway behind
            raise
        return self

    async def _status(self, path: str) -> int:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
        try:
            async with aiohttp.ClientSession() as s, s.get(self.url + path, timeout=aiohttp.ClientTimeout(2)) as r:
                return r.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def terminate(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return int(self.proc.returncode or 0)


async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=dict(headers)) as r:
        await r.read()
        return r.status


@contextlib.asynccontextmanager
async def serve_and_consumers(
    env: Mapping[str, str], consumers: int = 2
) -> AsyncIterator[tuple[GatewayProcess, list[GatewayProcess]]]:
    """``gateway serve`` and ``consumers`` ``gateway consume`` processes (ids ``c0``, ``c1``...) on one
    environment, all stopped when the block ends."""
    serve = await GatewayProcess("serve", dict(env)).start()
    started: list[GatewayProcess] = []
    try:
        for i in range(consumers):
            started.append(
                await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": f"c{i}"}, name=f"consume-{i}").start()
            )
        yield serve, started
    finally:
        for proc in [serve, *started]:
            await proc.terminate()
