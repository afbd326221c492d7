"""``gateway check``: validate configuration and reach the broker and Redis."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from connectors import build_registry
from gateway import tracing
from gateway.bus.diagnose import describe
from gateway.commands import secret_policy
from gateway.config import GatewayFile
from gateway.errors import ConfigError
from gateway.runtime import make_bus, make_store
from gateway.settings import Settings


def _line(ok: bool, text: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'}  {text}")


async def _reach_bus(settings: Settings) -> bool:
    if settings.amqp_url is None:
        _line(True, "AMQP_URL is not set: `gateway dev` uses the in-process bus (accepted work is lost on exit)")
        return True
    bus = make_bus(settings)
    try:
        await asyncio.wait_for(bus.start(), 10)
        _line(True, f"RabbitMQ reachable; topology declared under namespace {settings.namespace!r}")
        return True
    except Exception as exc:
        _line(False, f"RabbitMQ at AMQP_URL: {describe(exc)}")
        return False
    finally:
        await bus.close()


async def _reach_store(settings: Settings) -> bool:
    if settings.redis_url is None:
        _line(True, "REDIS_URL is not set: `gateway dev` uses the in-process store")
        return True
    store = make_store(settings)
    try:
        ok = await store.ping()
        _line(ok, "Redis reachable" if ok else "Redis at REDIS_URL did not answer PING")
        return ok
    finally:
        await store.close()


def _tracing(settings: Settings) -> bool:
    try:
        mode = tracing.mode_from_env(settings.tracing)
        if mode != "off":
            tracing.check_installed(mode)
    except ConfigError as exc:
        _line(False, str(exc))
        return False
    _line(
        True,
        "tracing off (set GATEWAY_TRACING=otlp or OTEL_EXPORTER_OTLP_ENDPOINT)"
        if mode == "off"
        else f"tracing {mode}: spans from webhook to reply, trace context in message headers",
    )
    return True


def _secrets(file: GatewayFile) -> bool:
    found = secret_policy.problems(file, strict=True)
    for line in found:
        _line(False, line)
    if not found:
        _line(True, "secrets: no placeholder, none too short for serve and consume")
    return not found


async def run_check(settings: Settings, args: argparse.Namespace) -> int:
    """Every check runs, whatever failed before it: one run lists every problem."""
    ok = True
    try:
        file = settings.load_file()
    except ConfigError as exc:
        _line(False, str(exc))
        ok, file = False, GatewayFile()
    try:
        registry = build_registry(settings, file)
        for note in registry.notes:
            _line(True, note)
    except ConfigError as exc:
        _line(False, str(exc))
        ok = False
    try:
        from agents.registry import load_agents

        agents = load_agents(settings, file)
        _line(True, f"agents: {', '.join(sorted(agents))} (default {settings.default_agent!r})")
    except ConfigError as exc:
        _line(False, str(exc))
        ok = False
    ok &= _secrets(file)
    ok &= _tracing(settings)
    ok &= await _reach_bus(settings)
    ok &= await _reach_store(settings)
    print("configuration ok" if ok else "configuration has problems (see FAIL lines)")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("check", help="validate configuration and reach the broker and Redis")
    p.set_defaults(run=run_check)
