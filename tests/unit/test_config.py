"""gateway.toml loading, Settings from the environment, and the connector registry's notes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors import build_registry
from gateway.core.config import GatewayFile, load_config_file
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings

SHOP_SECRET = "whsec_" + base64.b64encode(b"shop-key").decode()

SHOP_TOML = """
[webhooks.sources.shop]
secret_env = "SHOP_WEBHOOK_SECRET"
customer_pointer = "/customer/id"
text_pointer = "/message/text"
reply_url = "https://shop.example.com/agent-replies"

[agents.support]
path = "examples.support_agent:agent"

[[routes]]
platform = "slack"
channel = "C0123"
agent = "support"
key = "channel"
busy = "collect"
"""


@pytest.fixture(autouse=True)
def _no_source_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOP_WEBHOOK_SECRET", "SUPPORT_TOKEN", "SUPPORT_SECRET"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- gateway.toml ------------------------------------------------------------------------------


def test_no_path_is_an_empty_file() -> None:
    assert load_config_file(None) == GatewayFile()


def test_a_valid_file_loads(tmp_path: Path) -> None:
    file = load_config_file(write(tmp_path, SHOP_TOML))
    shop = file.webhooks.sources["shop"]
    assert shop.customer_pointer == "/customer/id"
    assert shop.reply_url == "https://shop.example.com/agent-replies"
    assert file.agents["support"].path == "examples.support_agent:agent"
    [route] = file.routes
    assert (route.platform, route.channel, route.agent, route.key, route.busy) == (
        "slack",
        "C0123",
        "support",
        "channel",
        "collect",
    )


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "gateway.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config_file(path)
    assert str(path) in str(info.value)


def test_invalid_toml_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "[webhooks.sources.shop\nsecret_env = ")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config_file(path)
    assert str(path) in str(info.value)


def test_unknown_key_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[webhooks.sources.shop]\nsecret_env = "X"\ncustomer_pointr = "/id"\n')
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "webhooks.sources.shop.customer_pointr" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_top_level_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="slak"):
        load_config_file(write(tmp_path, "[slak]\nx = 1\n"))


def test_bad_route_value_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[[routes]]\nplatform = "slack"\nkey = "team"\n')
    with pytest.raises(ConfigError, match=r"routes\.0\.key"):
        load_config_file(path)


def test_source_secret_env_unset_is_named_when_secrets_are_read(tmp_path: Path) -> None:
    file = load_config_file(write(tmp_path, SHOP_TOML))
    with pytest.raises(ConfigError, match="SHOP_WEBHOOK_SECRET"):
        file.webhooks.sources["shop"].secrets("shop")


def test_source_secrets_split_for_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "whsec_a2V5MQ== whsec_a2V5Mg==")
    file = load_config_file(write(tmp_path, SHOP_TOML))
    secrets = file.webhooks.sources["shop"].secrets("shop")
    assert [s.get_secret_value() for s in secrets] == ["whsec_a2V5MQ==", "whsec_a2V5Mg=="]


@pytest.mark.parametrize("kind", ["directory", "not_utf8"])
def test_unreadable_file_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "gateway.toml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe[agents]\n")
    with pytest.raises(ConfigError):
        load_config_file(path)


# --- Settings ----------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = Settings()
    assert (s.host, s.port, s.namespace) == ("127.0.0.1", 8080, "gw")
    assert s.amqp_url is None
    assert s.redis_url is None
    assert s.slack_signing_secret is None
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.default_agent == "echo"
    assert s.config_path is None


def test_settings_read_the_documented_env_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_HOST", "10.1.2.3")
    monkeypatch.setenv("GATEWAY_PORT", "9090")
    monkeypatch.setenv("GATEWAY_NAMESPACE", "test-ns")
    monkeypatch.setenv("GATEWAY_DEFAULT_AGENT", "llm")
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "gateway.toml"))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "slack-secret")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9000/")
    s = Settings()
    assert s.host == "10.1.2.3"
    assert s.port == 9090
    assert s.namespace == "test-ns"
    assert s.default_agent == "llm"
    assert s.config_path == tmp_path / "gateway.toml"
    assert s.slack_signing_secret is not None
    assert s.slack_signing_secret.get_secret_value() == "slack-secret"
    assert s.telegram_api_url == "http://127.0.0.1:9000"


def test_amqp_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://gateway:hunter2@rabbit:5672/")
    monkeypatch.setenv("REDIS_URL", "redis://:sw0rdfish@redis:6379/0")
    s = Settings()
    assert isinstance(s.amqp_url, SecretStr)
    assert s.amqp_url.get_secret_value() == "amqp://gateway:hunter2@rabbit:5672/"
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "hunter2" not in text
        assert "sw0rdfish" not in text


def test_slack_api_url_gains_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9001/api")
    assert Settings().slack_api_url == "http://127.0.0.1:9001/api/"


def test_empty_env_vars_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_PORT", "SLACK_SIGNING_SECRET", "AMQP_URL", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.setenv(name, "")
    s = Settings()
    assert s.port == 8080
    assert s.slack_signing_secret is None
    assert s.amqp_url is None
    assert s.telegram_bot_token is None


def test_settings_accept_field_names() -> None:
    s = Settings(port=1234, slack_signing_secret="x")
    assert s.port == 1234
    assert s.slack_signing_secret is not None


# --- the registry ------------------------------------------------------------------------------


def test_no_secrets_no_connectors() -> None:
    reg = build_registry(Settings(), GatewayFile())
    assert reg.connectors == {}
    assert reg.get("slack") is None
    notes = "\n".join(reg.notes)
    assert "SLACK_SIGNING_SECRET is not set: the Slack connector is disabled" in notes
    assert "TELEGRAM_BOT_TOKEN is not set" in notes


def test_slack_secret_enables_slack() -> None:
    reg = build_registry(Settings(slack_signing_secret="s"), GatewayFile())
    slack = reg.get("slack")
    assert slack is not None
    assert slack.handles("events")
    assert any("SLACK_BOT_TOKEN is not set" in n for n in reg.notes)


def test_telegram_token_without_secret_token_is_disabled() -> None:
    reg = build_registry(Settings(telegram_bot_token="123:abc"), GatewayFile())
    assert reg.get("telegram") is None
    assert any("TELEGRAM_SECRET_TOKEN" in n and "disabled" in n for n in reg.notes)


def test_telegram_token_and_secret_enable_default_bot() -> None:
    reg = build_registry(Settings(telegram_bot_token="123:abc", telegram_secret_token="tok"), GatewayFile())
    telegram = reg.get("telegram")
    assert telegram is not None
    assert telegram.handles("default")
    assert not telegram.handles("support")


def test_webhook_source_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SHOP_SECRET)
    reg = build_registry(Settings(), load_config_file(write(tmp_path, SHOP_TOML)))
    hooks = reg.get("webhook")
    assert hooks is not None
    assert hooks.handles("shop")


def test_webhook_source_without_its_secret_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SHOP_WEBHOOK_SECRET"):
        build_registry(Settings(), load_config_file(write(tmp_path, SHOP_TOML)))


def test_webhook_source_with_a_bad_secret_fails_at_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "whsec_***")
    with pytest.raises(ConfigError):
        build_registry(Settings(), load_config_file(write(tmp_path, SHOP_TOML)))


def test_telegram_bot_from_the_file_without_its_token_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path, '[telegram.bots.support]\ntoken_env = "SUPPORT_TOKEN"\nsecret_token_env = "SUPPORT_SECRET"\n'
    )
    monkeypatch.setenv("SUPPORT_SECRET", "s")
    with pytest.raises(ConfigError, match="SUPPORT_TOKEN"):
        build_registry(Settings(), load_config_file(path))
