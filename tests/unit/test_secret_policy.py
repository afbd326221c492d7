"""The secret policy: placeholders never enable a connector; weak secrets only in ``dev``."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from connectors.secret_policy import audit, enforce, is_placeholder
from gateway.core.config import GatewayFile, load_config_file
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings

SLACK_REAL = "8f742231b10e8888abcd99yyyzzz85a5"  # the shape Slack issues: 32 characters
WHSEC_REAL = "whsec_" + base64.b64encode(b"k" * 24).decode()

PLACEHOLDERS = [
    "REPLACE_ME",
    "replace-me",
    "changeme",
    "change-me",
    "CHANGE_ME",
    "xxx",
    "XXXXXXXXXXXXXXXX",
    "secret",
    "Secret",
    "TODO",
    "todo: set me",
    "your-signing-secret-here",
    "your_bot_token",
    "put-your-secret-here",
    "<signing secret>",
    "<your-token>",
    "${SLACK_SIGNING_SECRET}",
    "{{ slack_signing_secret }}",
    "...",
    "xoxb-...",
    "xoxb-",
    "xoxb-your-token",
    "whsec_REPLACE_ME",
    "sk-...",
    "********",
    "   ",
    "",
    "none",
    "null",
    "placeholder",
]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_obvious_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    ["dev-secret", SLACK_REAL, "123:E2E", "e2e-telegram-secret-token", "xoxb-e2e", WHSEC_REAL, "s3cr3t-signing"],
)
def test_real_looking_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_random_secrets_are_never_taken_for_placeholders() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        raw = rng.randbytes(rng.randint(16, 48))
        for value in (raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("="), base64.b64encode(raw).decode()):
            assert not is_placeholder(value), value


def _problems(**settings: str) -> dict[str, str]:
    return {p.variable: p.severity for p in audit(Settings(**settings), GatewayFile())}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field", ["slack_signing_secret", "slack_bot_token", "telegram_bot_token", "telegram_secret_token"]
)
def test_replace_me_is_refused_by_every_command_with_the_variable_named(field: str) -> None:
    settings = Settings(**{field: "REPLACE_ME"})  # type: ignore[arg-type]
    variable = field.upper()
    for command in ("serve", "consume", "dev"):
        with pytest.raises(ConfigError) as info:
            enforce(settings, GatewayFile(), command=command)
        assert variable in str(info.value)
        assert "placeholder" in str(info.value)
        assert "REPLACE_ME" not in str(info.value)


def test_a_short_slack_secret_is_refused_by_serve_and_consume_and_only_warned_about_by_dev() -> None:
    settings = Settings(slack_signing_secret="dev-secret")
    for command in ("serve", "consume"):
        with pytest.raises(ConfigError, match=r"SLACK_SIGNING_SECRET .* shorter than the 32 characters"):
            enforce(settings, GatewayFile(), command=command)
    warnings = enforce(settings, GatewayFile(), command="dev")
    assert len(warnings) == 1
    assert "SLACK_SIGNING_SECRET" in warnings[0]
    assert "dev-secret" not in warnings[0]


def test_real_secrets_pass_everywhere() -> None:
    settings = Settings(
        slack_signing_secret=SLACK_REAL,
        slack_bot_token="xoxb-1234-5678-abcdefgh",
        telegram_bot_token="123456:AAbbCCdd-ee_ff",
        telegram_secret_token="Zx9-kP_2mQ7vN4rT8wY1",
    )
    for command in ("serve", "consume", "dev"):
        assert enforce(settings, GatewayFile(), command=command) == []


@pytest.mark.parametrize(
    ("token", "severity"),
    [
        ("short-token", "weak"),
        ("has space inside it", "invalid"),
        ("dots.are.not.allowed.x", "invalid"),
        ("x" * 20, "placeholder"),
    ],
)
def test_telegram_secret_token_rules(token: str, severity: str) -> None:
    assert _problems(telegram_secret_token=token) == {"TELEGRAM_SECRET_TOKEN": severity}


def test_a_telegram_secret_token_longer_than_telegram_allows_is_invalid() -> None:
    assert _problems(telegram_secret_token="a1" * 129) == {"TELEGRAM_SECRET_TOKEN": "invalid"}


SOURCE = """
[webhooks.sources.shop]
secret_env = "SHOP_SECRET"
reply_url = "https://shop.example/replies"
reply_secret_env = "SHOP_REPLY"

[telegram.bots.support]
token_env = "SUPPORT_TOKEN"
secret_token_env = "SUPPORT_SECRET"
"""


def _file(tmp_path: Path) -> GatewayFile:
    path = tmp_path / "gateway.toml"
    path.write_text(SOURCE)
    return load_config_file(path)


def test_secrets_named_by_gateway_toml_are_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_SECRET", f"{WHSEC_REAL} whsec_{base64.b64encode(b'short').decode()}")
    monkeypatch.setenv("SHOP_REPLY", "REPLACE_ME")
    monkeypatch.setenv("SUPPORT_TOKEN", "changeme")
    # SUPPORT_SECRET unset
    problems = audit(Settings(), _file(tmp_path))
    by_var = {p.variable: p for p in problems}
    assert by_var["SHOP_SECRET"].severity == "weak"
    assert "secret 2 of 2" in by_var["SHOP_SECRET"].message
    assert "fewer than 24 bytes" in by_var["SHOP_SECRET"].message
    assert by_var["SHOP_REPLY"].severity == "placeholder"
    assert by_var["SUPPORT_TOKEN"].severity == "placeholder"
    assert by_var["SUPPORT_SECRET"].message == (
        "telegram bot 'support' secret token: environment variable SUPPORT_SECRET is not set"
    )
    with pytest.raises(ConfigError) as info:
        enforce(Settings(), _file(tmp_path), command="dev")
    message = str(info.value)
    assert all(v in message for v in ("SHOP_REPLY", "SUPPORT_TOKEN", "SUPPORT_SECRET"))  # every problem at once
    assert "SHOP_SECRET" not in message  # weak only: dev lets it pass


def test_a_webhook_secret_that_is_not_base64_is_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_SECRET", "whsec_not*base64!")
    monkeypatch.setenv("SHOP_REPLY", WHSEC_REAL)
    monkeypatch.setenv("SUPPORT_TOKEN", "123:abc")
    monkeypatch.setenv("SUPPORT_SECRET", "support-secret-token")
    problems = audit(Settings(), _file(tmp_path))
    assert [(p.variable, p.severity) for p in problems] == [("SHOP_SECRET", "invalid")]
    assert "not*base64" not in problems[0].message
