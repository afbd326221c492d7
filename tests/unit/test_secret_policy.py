"""Placeholders never enable a connector; serve and consume refuse short secrets; dev only warns."""

from __future__ import annotations

import pytest

from gateway.commands.secret_policy import is_placeholder, problems
from gateway.config import GatewayFile

STRONG_SLACK = "8f742231b10e8888abcd99yyyzzz85a5"  # 32 characters, like Slack's


@pytest.mark.parametrize(
    "value",
    ["REPLACE_ME", "replace-me", "changeme", "CHANGE_ME", "", "   ", "<your-secret>", "${SECRET}", "xxxx", "TODO"],
)
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value", [STRONG_SLACK, "dev-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "123:AAH-real"]
)
def test_real_looking_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_a_placeholder_is_refused_naming_the_variable_not_the_value() -> None:
    found = problems(GatewayFile(), strict=False, env={"SLACK_SIGNING_SECRET": "REPLACE_ME"})
    assert found == ["SLACK_SIGNING_SECRET holds a placeholder or is empty: set the real value, or unset it"]


def test_a_placeholder_inside_a_url_is_refused() -> None:
    found = problems(GatewayFile(), strict=False, env={"AMQP_URL": "amqps://REPLACE_ME:REPLACE_ME@mq:5671/"})
    assert [f.split(" ")[0] for f in found] == ["AMQP_URL"]


def test_short_secrets_are_refused_only_when_strict() -> None:
    env = {"SLACK_SIGNING_SECRET": "dev-secret", "TELEGRAM_SECRET_TOKEN": "abc"}
    assert problems(GatewayFile(), strict=False, env=env) == []
    strict = problems(GatewayFile(), strict=True, env=env)
    assert [f.split(" ")[0] for f in strict] == ["SLACK_SIGNING_SECRET", "TELEGRAM_SECRET_TOKEN"]
    assert problems(GatewayFile(), strict=True, env={"SLACK_SIGNING_SECRET": STRONG_SLACK}) == []


def test_variables_named_by_gateway_toml_are_checked() -> None:
    file = GatewayFile.model_validate(
        {"webhooks": {"sources": {"shop": {"secret_env": "SHOP_SECRET"}}},
         "telegram": {"bots": {"support": {"token_env": "SUP_TOKEN", "secret_token_env": "SUP_SECRET"}}}}
    )  # fmt: skip
    env = {"SHOP_SECRET": "whsec_c2hvcnQ=", "SUP_TOKEN": "changeme", "SUP_SECRET": "a-long-enough-secret-token"}
    found = problems(file, strict=True, env=env)
    assert [f.split(" ")[0] for f in found] == ["SUP_TOKEN", "SHOP_SECRET"]
