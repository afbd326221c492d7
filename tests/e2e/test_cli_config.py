"""Bad configuration fails at start-up and in `gateway check`, with a message that says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gateway(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SLACK_", "TELEGRAM_"))}
    clean.pop("AMQP_URL", None)
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


async def test_check_passes_with_services_and_names_what_is_enabled(services: tuple[str, str, str]) -> None:
    amqp, redis, namespace = services
    env = {
        "AMQP_URL": amqp,
        "REDIS_URL": redis,
        "SLACK_SIGNING_SECRET": "check-slack-signing-secret-9f3a0123",
        "GATEWAY_NAMESPACE": namespace,
    }
    result = gateway("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Slack connector enabled" in result.stdout
    assert "TELEGRAM_BOT_TOKEN is not set: the Telegram bot 'default' is disabled (404)" in result.stdout
    assert "RabbitMQ reachable" in result.stdout
    assert "Redis reachable" in result.stdout
    assert "check-slack-signing-secret-9f3a0123" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[agents.x]\npath = "no_such_module:agent"\n', "cannot import module 'no_such_module'"),
        ('[agents.x]\npath = "examples.support_agent:missing"\n', "has no attribute 'missing'"),
        ('[agents.x]\npath = "not-an-import-path"\n', "is not an import path like 'package.module:attr'"),
        ('[agents.x]\npath = "gateway.samples:slack_message"\n', "has no on_event(ctx, event) method"),
        ('[[routes]]\nplatform = "slack"\nagent = "ghost"\n', "agent 'ghost' is used but not defined"),
        ('[webhooks.sources.shop]\nsecret_env = "NOT_SET_ANYWHERE"\n', "NOT_SET_ANYWHERE is not set"),
        ("[webhooks.sources.shop]\nsecret = 'inline'\n", "webhooks.sources.shop.secret"),
    ],
)
def test_check_reports_broken_configuration(tmp_path: Path, config: str, expected: str) -> None:
    result = gateway("check", env={"GATEWAY_CONFIG": toml(tmp_path, config)})
    assert result.returncode == 1
    assert expected in result.stdout
    assert "FAIL" in result.stdout


def test_dev_refuses_to_start_with_a_broken_agent(tmp_path: Path) -> None:
    config = toml(tmp_path, '[agents.x]\npath = "no_such_module:agent"\n')
    result = gateway("dev", env={"GATEWAY_CONFIG": config, "GATEWAY_PORT": "0"})
    assert result.returncode == 2
    assert "cannot import module 'no_such_module'" in result.stderr


def test_serve_and_consume_refuse_to_start_without_the_broker_url() -> None:
    for command in ("serve", "consume"):
        result = gateway(command, env={})
        assert result.returncode == 2
        assert f"gateway {command} needs AMQP_URL and REDIS_URL" in result.stderr


def test_llm_default_agent_without_a_model_says_how_to_enable_it() -> None:
    result = gateway("check", env={"GATEWAY_DEFAULT_AGENT": "llm"})
    assert result.returncode == 1
    assert "set GATEWAY_LLM_MODEL to enable 'llm'" in result.stdout
