"""Operator commands piped into `head` exit quietly: no BrokenPipeError traceback, nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
LETTERS = 1500  # well over a pipe buffer of `dlq list` lines


async def _dead_letters(amqp: str, namespace: str, n: int) -> None:
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    try:
        body = json.dumps({"id": "x", "text": "a dead letter " * 4}).encode()
        headers = {"x-stage": "dispatch", "x-reason": "turn_failed", "x-error": "boom", "x-attempts": 3}
        await asyncio.gather(
            *(bus.publish(bus.topology.dead_exchange, "", body, headers=headers, message_id=f"m{i}") for i in range(n))
        )
    finally:
        await bus.close()


async def _dead_depth(amqp: str, namespace: str) -> int:
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    try:
        return (await bus.queue_info(bus.topology.dead_queue)).messages
    finally:
        await bus.close()


def _head_1(env: dict[str, str], *args: str) -> tuple[bytes, int, bytes]:
    """`gateway ARGS | head -1`: read one line (through an 8 KiB buffer, as head does), close the pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=8192,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    return first, proc.wait(timeout=60), err


@pytest.mark.parametrize("args", [("dlq", "list"), ("dlq", "list", "--json")])
async def test_dlq_list_into_head_exits_quietly_and_gives_every_letter_back(
    services: tuple[str, str, str], args: tuple[str, ...]
) -> None:
    amqp, redis, namespace = services
    await _dead_letters(amqp, namespace, LETTERS)
    env = {"AMQP_URL": amqp, "REDIS_URL": redis, "GATEWAY_NAMESPACE": namespace, "GATEWAY_LOG_FORMAT": "json"}
    first, code, err = await asyncio.to_thread(_head_1, env, *args)
    assert first.strip()
    assert b"Traceback" not in err, err.decode()
    assert b"BrokenPipe" not in err, err.decode()
    assert code == 141  # 128 + SIGPIPE, as a command killed by the closed pipe reports it
    assert await _dead_depth(amqp, namespace) == LETTERS


async def test_tail_into_head_exits_quietly(services: tuple[str, str, str]) -> None:
    amqp, _, namespace = services
    env = {"AMQP_URL": amqp, "GATEWAY_NAMESPACE": namespace, "GATEWAY_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "tail",
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    watching = await asyncio.wait_for(proc.stderr.readline(), 60)
    assert b"gateway tail: watching" in watching
    bus = AmqpBus(amqp, Topology(namespace, 16))
    await bus.start()
    try:
        body = json.dumps({"id": "e", "platform": "slack", "text": "flowing " * 20}).encode()
        await bus.publish(bus.topology.events_exchange, "0", body)
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip()
        proc._transport.get_pipe_transport(1).close()  # type: ignore[attr-defined]
        for _ in range(5000):  # keep items coming (each publish is a confirmed round trip) until the tail is gone
            if proc.returncode is not None:
                break
            await bus.publish(bus.topology.events_exchange, "0", body)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        await bus.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = await proc.stderr.read()
    assert b"Traceback" not in err, err.decode()
    assert code in (0, 141)
