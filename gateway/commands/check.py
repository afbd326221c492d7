"""``gateway check``: validate configuration and reach the broker and Redis.

Every check runs, whatever an earlier one found: gateway.toml, each connector secret (placeholders
and secrets too weak for ``serve``/``consume``; with neither AMQP_URL nor REDIS_URL set only ``dev``
can run, so weak ones are warnings), the connectors, every agent, tracing, RabbitMQ and Redis.
One line each: ``ok``, ``warn`` or ``FAIL``. Exit status 1 when any line is FAIL, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from connectors import build_registry, secret_policy
from connectors.webhooks.signing import secret_key
from gateway.commands.parsers import documented_parser
from gateway.core import tracing
from gateway.core.bus.diagnose import describe
from gateway.core.config import GatewayFile
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings
from gateway.runtime import make_bus, make_store


def _line(ok: bool, text: str, *, warn: bool = False) -> None:
    print(f"{'warn' if warn else 'ok  ' if ok else 'FAIL'}  {text}")


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


def _file(settings: Settings) -> GatewayFile | None:
    try:
        file = settings.load_file()
    except ConfigError as exc:
        _line(False, str(exc))
        return None
    if settings.config_path is not None:
        _line(True, f"GATEWAY_CONFIG {settings.config_path} read")
    return file


def _secrets(settings: Settings, file: GatewayFile) -> bool:
    dev_only = settings.amqp_url is None and settings.redis_url is None
    ok = True
    for problem in secret_policy.audit(settings, file):
        if problem.fatal(dev=dev_only):
            _line(False, problem.message)
            ok = False
        else:
            _line(True, f"{problem.message}: `gateway dev` accepts it, serve and consume refuse it", warn=True)
    return ok


def _connectors(settings: Settings, file: GatewayFile) -> bool:
    try:
        registry = build_registry(settings, file)
    except ConfigError as exc:
        _line(False, str(exc))
        return False
    for note in registry.notes:
        _line(True, note)
    return True


def _agents(settings: Settings, file: GatewayFile) -> bool:
    from agents.registry import agents_and_problems  # only when checking: the other commands never load agents

    agents, problems = agents_and_problems(settings, file)
    for problem in problems:
        _line(False, problem)
    _line(True, f"agents: {', '.join(sorted(agents))} (default {settings.default_agent!r})")
    return not problems


def _handoff(settings: Settings, file: GatewayFile) -> bool:
    """``[handoff]``: its targets can be reached (gateway/core/handoff.py)."""
    section = file.handoff
    ok = True
    if section.slack_channel and settings.slack_bot_token is None and settings.slack_client_id is None:
        _line(
            False, "[handoff] slack_channel needs the Slack sender: set SLACK_BOT_TOKEN (or install across workspaces)"
        )
        ok = False
    if section.webhook_url:
        try:
            secret = section.webhook_secret()
            secret_key(secret.get_secret_value() if secret is not None else "")
        except ConfigError as exc:
            _line(False, f"[handoff] webhook_secret_env: {exc}")
            ok = False
    if ok and (section.slack_channel or section.webhook_url):
        targets = [t for t in (section.slack_channel and "Slack", section.webhook_url and "webhook") if t]
        _line(True, f"handoff notices go to: {', '.join(targets)}")
    return ok


async def run_check(settings: Settings, args: argparse.Namespace) -> int:
    file = _file(settings)
    ok = file is not None
    secrets_ok = _secrets(settings, file or GatewayFile())
    if file is not None:
        # With a refused secret the connectors are not built: its FAIL line above says why.
        ok &= secrets_ok and _connectors(settings, file)
        ok &= _agents(settings, file)
        ok &= _handoff(settings, file)
    ok &= secrets_ok
    ok &= _tracing(settings)
    ok &= await _reach_bus(settings)
    ok &= await _reach_store(settings)
    print("configuration ok" if ok else "configuration has problems (see FAIL lines)")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(sub, "check", help="validate configuration and reach the broker and Redis", doc=__doc__)
    p.set_defaults(run=run_check)
