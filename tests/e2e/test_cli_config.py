"""Bad configuration fails at start-up and in `gateway check`, with a message that says what to fix."""

from __future__ import annotations

import asyncio
import json
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
        "SLACK_SIGNING_SECRET": "check-secret-9f3a-0123456789abcdef",
        "GATEWAY_NAMESPACE": namespace,
    }
    result = gateway("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Slack connector enabled" in result.stdout
    assert "TELEGRAM_BOT_TOKEN is not set: the Telegram bot 'default' is disabled (404)" in result.stdout
    assert "RabbitMQ reachable" in result.stdout
    assert "Redis reachable" in result.stdout
    assert "check-secret-9f3a-0123456789abcdef" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[agents.x]\npath = "no_such_module:agent"\n', "cannot import module 'no_such_module'"),
        ('[agents.x]\npath = "examples.support_agent:missing"\n', "has no attribute 'missing'"),
        ('[agents.x]\npath = "not-an-import-path"\n', "is not an import path like 'package.module:attr'"),
        ('[agents.x]\npath = "gateway.core.samples:slack_message"\n', "has no on_event(ctx, event) method"),
        ('[[routes]]\nplatform = "slack"\nagent = "ghost"\n', "agent 'ghost' is used but not defined"),
        ('[webhooks.sources.shop]\nsecret_env = "NOT_SET_ANYWHERE"\n', "NOT_SET_ANYWHERE is not set"),
        ("[webhooks.sources.shop]\nsecret = 'inline'\n", "webhooks.sources.shop.secret"),
        ('[handoff]\nslack_channel = "C0HUMANS"\n', "[handoff] slack_channel needs the Slack sender"),
        ('[handoff]\nwebhook_url = "https://x.example/h"\n', "webhook_url needs webhook_secret_env"),
        (
            '[handoff]\nwebhook_url = "https://x.example/h"\nwebhook_secret_env = "NOT_SET_ANYWHERE"\n',
            "NOT_SET_ANYWHERE is not set",
        ),
        ('[[routes]]\nplatform = "slack"\nsession = "Ops Desk"\n', "routes.0.session"),
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


# --- secrets: placeholders never enable a connector ---------------------------------------------

K8S_SECRET = ROOT / "deploy" / "k8s" / "secret.yaml"
EXAMPLE_CONFIG = ROOT / "deploy" / "gateway.example.toml"
CONNECTOR_SECRETS = (
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_SECRET_TOKEN",
    "SUPPORT_BOT_TOKEN",
    "SUPPORT_BOT_SECRET",
    "SHOP_WEBHOOK_SECRET",
    "SHOP_REPLY_SECRET",
    "DISCORD_BOT_TOKEN",
)


def k8s_secret_env(services: tuple[str, str, str]) -> dict[str, str]:
    """The Kubernetes Secret as shipped (every value REPLACE_ME), with the test's broker and Redis."""
    import yaml

    amqp, redis, namespace = services
    data: dict[str, str] = yaml.safe_load(K8S_SECRET.read_text())["stringData"]
    assert {data[name] for name in CONNECTOR_SECRETS} == {"REPLACE_ME"}
    return {
        **data,
        "AMQP_URL": amqp,
        "REDIS_URL": redis,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_CONFIG": str(EXAMPLE_CONFIG),
        "GATEWAY_PORT": "0",
        "GATEWAY_CONSUME_PORT": "0",
    }


@pytest.mark.parametrize("command", ["serve", "consume", "dev"])
def test_the_k8s_secrets_placeholders_stop_every_command_naming_each_variable(
    services: tuple[str, str, str], command: str
) -> None:
    result = gateway(command, env=k8s_secret_env(services), timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"gateway {command} refuses to start" in result.stderr
    for name in CONNECTOR_SECRETS:
        assert f"{name} (" in result.stderr, name
    assert "REPLACE_ME" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_fails_on_each_placeholder_and_still_runs_every_other_check(services: tuple[str, str, str]) -> None:
    result = gateway("check", env=k8s_secret_env(services))
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == len(CONNECTOR_SECRETS)
    assert all("placeholder" in line for line in fails)
    assert "RabbitMQ reachable" in result.stdout  # the checks after the secrets ran too
    assert "Redis reachable" in result.stdout
    assert "REPLACE_ME" not in result.stdout + result.stderr


def test_serve_and_consume_refuse_a_short_signing_secret(services: tuple[str, str, str]) -> None:
    amqp, redis, namespace = services
    env = {"AMQP_URL": amqp, "REDIS_URL": redis, "GATEWAY_NAMESPACE": namespace, "SLACK_SIGNING_SECRET": "dev-secret"}
    for command in ("serve", "consume"):
        result = gateway(command, env=env, timeout=30)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "SLACK_SIGNING_SECRET (Slack signing secret) is shorter than the 32 characters" in result.stderr
        assert "dev-secret" not in result.stderr
    check = gateway("check", env=env)
    assert check.returncode == 1
    assert "FAIL  SLACK_SIGNING_SECRET (Slack signing secret) is shorter" in check.stdout


async def test_the_readme_dev_example_keeps_working_with_a_warning() -> None:
    """`SLACK_SIGNING_SECRET=dev-secret gateway dev`, then `gateway send slack "hello"` from another terminal."""
    from tests.support.processes import GatewayProcess

    dev = await GatewayProcess("dev", {"SLACK_SIGNING_SECRET": "dev-secret"}).start()
    try:
        sent = await asyncio.to_thread(
            gateway,
            "send",
            "slack",
            "hello",
            env={"SLACK_SIGNING_SECRET": "dev-secret", "GATEWAY_PORT": str(dev.port)},
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "-> 200" in sent.stdout
        warnings = [json.loads(line) for line in dev.logs().splitlines() if '"weak_secret"' in line]
        assert len(warnings) == 1
        assert "SLACK_SIGNING_SECRET" in warnings[0]["note"]
        assert "dev-secret" not in dev.logs()
    finally:
        assert await dev.terminate() == 0


def test_check_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        '[webhooks.sources.shop]\nsecret_env = "NOT_SET_ANYWHERE"\n'
        '[agents.a]\npath = "no_such_module:agent"\n'
        '[agents.b]\npath = "examples.support_agent:missing"\n'
        '[[routes]]\nplatform = "slack"\nagent = "ghost"\n',
    )
    env = {
        "GATEWAY_CONFIG": config,
        "TELEGRAM_BOT_TOKEN": "REPLACE_ME",
        "TELEGRAM_SECRET_TOKEN": "changeme",
        "GATEWAY_TRACING": "bogus",
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = gateway("check", env=env)
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    expected = [
        "TELEGRAM_BOT_TOKEN (Telegram bot token) looks like a placeholder",
        "TELEGRAM_SECRET_TOKEN (Telegram secret token) looks like a placeholder",
        "NOT_SET_ANYWHERE is not set",
        "cannot import module 'no_such_module'",
        "has no attribute 'missing'",
        "agent 'ghost' is used but not defined",
        "GATEWAY_TRACING",
        "RabbitMQ",
        "Redis",
    ]
    for text in expected:
        assert sum(text in line for line in fails) == 1, (text, result.stdout)
    assert len(fails) == len(expected), result.stdout
