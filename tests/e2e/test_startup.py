"""Starting as the README says: serve and consume side by side, clear port errors, and a stop that works
while the broker is still unreachable. (Secrets refused at start-up: tests/e2e/test_cli_config.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import SLACK_SECRET
from tests.support.processes import GatewayProcess, free_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def readme_env(amqp: str, redis: str, namespace: str, **extra: str) -> dict[str, str]:
    """The README's environment for serve and consume: no port settings at all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SLACK_", "TELEGRAM_"))}
    return {
        **clean,
        "AMQP_URL": amqp,
        "REDIS_URL": redis,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_LOG_FORMAT": "json",
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        **extra,
    }


async def spawn(command: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", command, env=env, cwd=ROOT, stdout=out, stderr=out
        )
    finally:
        out.close()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("command", ["serve", "consume"])
async def test_sigterm_stops_a_gateway_that_cannot_reach_its_broker(
    command: str, services: tuple[str, str, str], tmp_path: Path
) -> None:
    _, redis, namespace = services
    log = tmp_path / f"{command}.log"
    env = readme_env(
        DEAD_BROKER, redis, namespace, GATEWAY_PORT=str(free_port()), GATEWAY_CONSUME_PORT=str(free_port())
    )
    proc = await spawn(command, env, log)
    try:
        await eventually(log.read_text, until=lambda t: "broker_unreachable" in t, timeout=30, what="waiting line")
        assert "connection refused" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)  # well inside the 20 s grace
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, log.read_text()[-2000:]


@pytest.mark.skipif(not (port_free(8080) and port_free(8081)), reason="8080/8081 are taken on this machine")
async def test_serve_and_consume_start_side_by_side_with_the_readme_environment(
    services: tuple[str, str, str], tmp_path: Path
) -> None:
    amqp, redis, namespace = services
    env = readme_env(amqp, redis, namespace)
    procs = [await spawn(c, env, tmp_path / f"{c}.log") for c in ("serve", "consume")]
    probes = [GatewayProcess("serve", {}), GatewayProcess("consume", {})]
    probes[0].port, probes[1].port = 8080, 8081
    try:
        for probe, proc in zip(probes, procs, strict=True):
            probe.proc = proc
            await eventually(
                lambda p=probe: p._status("/readyz"), until=lambda s: s == 200, timeout=30, what=probe.name
            )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 40) for p in procs]
    assert codes == [0, 0]


@pytest.mark.parametrize(("command", "variable"), [("serve", "GATEWAY_PORT"), ("consume", "GATEWAY_CONSUME_PORT")])
async def test_a_port_in_use_is_one_line_naming_the_setting(
    command: str, variable: str, services: tuple[str, str, str], tmp_path: Path
) -> None:
    amqp, redis, namespace = services
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = readme_env(amqp, redis, namespace, GATEWAY_PORT=port, GATEWAY_CONSUME_PORT=port)
        log = tmp_path / "out.log"
        proc = await spawn(command, env, log)
        code = await asyncio.wait_for(proc.wait(), 40)
    text = log.read_text()
    assert code == 2
    assert f"the port is in use (another gateway?); set {variable} to a free port" in text
    assert len(text.strip().splitlines()) == 1
    assert "Traceback" not in text
