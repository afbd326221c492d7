"""Tokens at rest: Fernet round trip, key rotation, refused keys, and the secret policy that refuses them."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from connectors import secret_policy
from connectors.slack.tokencrypt import TokenCipher, UnreadableRecord, key_problem
from gateway.core.config import GatewayFile
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings


def _key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_hides_the_token() -> None:
    cipher = TokenCipher(SecretStr(_key()))
    sealed = cipher.encrypt('{"bot_token": "xoxb-123-secret"}')
    assert "xoxb" not in sealed
    assert "secret" not in sealed
    assert cipher.decrypt(sealed) == '{"bot_token": "xoxb-123-secret"}'


def test_a_record_under_another_key_is_unreadable_not_garbage() -> None:
    sealed = TokenCipher(SecretStr(_key())).encrypt("x")
    with pytest.raises(UnreadableRecord, match="GATEWAY_TOKEN_ENCRYPTION_KEY"):
        TokenCipher(SecretStr(_key())).decrypt(sealed)
    with pytest.raises(UnreadableRecord):
        TokenCipher(SecretStr(_key())).decrypt(sealed[:-4] + "AAAA")


def test_key_rotation_new_key_first_old_still_reads() -> None:
    old, new = _key(), _key()
    sealed = TokenCipher(SecretStr(old)).encrypt("before")
    both = TokenCipher(SecretStr(f"{new} {old}"))
    assert both.decrypt(sealed) == "before"
    assert TokenCipher(SecretStr(new)).decrypt(both.encrypt("after")) == "after"


@pytest.mark.parametrize("value", ["changeme", "", "   ", "abc", "x" * 44])
def test_not_a_key_is_refused_without_echoing_it(value: str) -> None:
    problem = key_problem(value)
    assert problem is not None
    assert "GATEWAY_TOKEN_ENCRYPTION_KEY" in problem
    if value.strip():
        assert value not in problem
    with pytest.raises(ConfigError):
        TokenCipher(SecretStr(value))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GATEWAY_TOKEN_ENCRYPTION_KEY": "REPLACE_ME"}, "GATEWAY_TOKEN_ENCRYPTION_KEY"),
        ({"GATEWAY_TOKEN_ENCRYPTION_KEY": "not-a-fernet-key-at-all"}, "GATEWAY_TOKEN_ENCRYPTION_KEY"),
        ({"SLACK_CLIENT_SECRET": "your-client-secret-here"}, "SLACK_CLIENT_SECRET"),
    ],
)
def test_every_command_refuses_placeholders(env: dict[str, str], variable: str) -> None:
    settings = Settings.model_validate(env)
    for command in ("serve", "consume", "dev"):
        with pytest.raises(ConfigError, match=variable):
            secret_policy.enforce(settings, GatewayFile(), command=command)


def test_a_real_key_passes() -> None:
    settings = Settings.model_validate(
        {"GATEWAY_TOKEN_ENCRYPTION_KEY": _key(), "SLACK_CLIENT_SECRET": "a" * 8 + "b" * 24}
    )
    assert [
        p for p in secret_policy.audit(settings, GatewayFile()) if p.variable.startswith(("GATEWAY_T", "SLACK_C"))
    ] == []
