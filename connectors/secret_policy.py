"""Which secrets may enable a connector: one policy for ``check``, ``serve``, ``consume`` and ``dev``.

A placeholder (``REPLACE_ME``, ``changeme``, ``your-token-here``, ``<secret>``, ``xoxb-...``, an
empty or blank value) never enables anything: every command refuses it. A real but weak secret
(shorter than its platform issues them) is refused by ``serve``, ``consume`` and ``check``; ``dev``
only warns, so ``SLACK_SIGNING_SECRET=dev-secret gateway dev`` keeps working on a laptop.
Messages name the variable, never its value.

Minimums, per secret type (checked 2026-11 against the platforms' docs):

- Slack signing secret: Slack issues 32 characters (App Credentials, "Signing Secret");
  https://api.slack.com/authentication/verifying-requests-from-slack
- Telegram ``secret_token`` of ``setWebhook``: 1-256 characters of ``A-Z a-z 0-9 _ -`` (Telegram
  refuses anything else); we ask for at least 16. https://core.telegram.org/bots/api#setwebhook
- Standard Webhooks: ``whsec_`` + base64 of a key "between 24 bytes (192 bits) and 64 bytes (512
  bits)"; https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
- ``GATEWAY_TOKEN_ENCRYPTION_KEY``: Fernet keys (32 url-safe base64 bytes), space separated for rotation;
  https://cryptography.io/en/latest/fernet/
- Bot tokens (Slack ``xoxb-``, Telegram ``123456:ABC…``, the WhatsApp access token, the Discord bot token) and
  the Slack client secret are checked for placeholders only: the platform refuses a wrong one at the first call.
- Meta app secret (``WHATSAPP_APP_SECRET``): 32 hex characters (App Dashboard → App settings → Basic →
  App secret); the webhook verify token is ours to choose: at least 16, like Telegram's.
  https://developers.facebook.com/docs/graph-api/webhooks/getting-started
- Teams (``TEAMS_APP_PASSWORD``): a Microsoft Entra client secret, 40 characters as Azure issues them; we
  ask for at least 32. https://learn.microsoft.com/azure/bot-service/bot-service-quickstart-registration
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from gateway.core.config import GatewayFile, env_secret
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings

Kind = Literal[
    "slack_signing_secret",
    "bot_token",
    "telegram_secret_token",
    "standard_webhooks",
    "meta_app_secret",
    "verify_token",
    "entra_client_secret",
    "fernet_key",
]
Severity = Literal["placeholder", "invalid", "weak"]

SLACK_SIGNING_SECRET_MIN = 32
TELEGRAM_SECRET_TOKEN_MIN = 16
TELEGRAM_SECRET_TOKEN_MAX = 256
STANDARD_WEBHOOKS_KEY_MIN = 24  # bytes, decoded
#: Minimum lengths of the other secrets, by kind (see the module docstring).
MIN_LENGTH: dict[str, tuple[int, str]] = {
    "meta_app_secret": (32, "the 32 characters Meta issues (App Dashboard → App settings → Basic → App secret)"),
    "verify_token": (
        16,
        "16 characters; use a random one (e.g. `openssl rand -hex 32`) and type the same into Meta's dashboard",
    ),
    "entra_client_secret": (
        32,
        "32 characters; Azure issues client secrets of 40 (the bot's app registration → Certificates & secrets)",
    ),
}

_TELEGRAM_CHARS = re.compile(r"[A-Za-z0-9_-]+")
#: Prefixes real values start with; what follows them is checked for a placeholder too (``xoxb-...``).
_PREFIXES = ("xoxb-", "xoxp-", "xapp-", "whsec_", "sk-")
#: Whole values that stand in for a secret, compared with ``-``, ``_`` and spaces left out.
_WORDS = frozenset({"replaceme", "changeme", "changeit", "setme", "fillme", "secret", "password", "passwd", "token"})
_WORDS |= {"apikey", "todo", "tbd", "fixme", "placeholder", "example", "sample", "dummy", "fake", "test", "none"}
_WORDS |= {"null", "nil", "undefined", "default", "empty", "redacted", "hidden"}
#: Anywhere in the value: nobody's random secret contains these.
_INSIDE = ("replace_me", "replaceme", "replace-me", "changeme", "change_me", "change-me", "...", "…")
#: Whole-value shapes of a stand-in, on the lower-cased value.
_SHAPES = (
    re.compile(r"(.)\1*", re.S),  # one character repeated: xxxx, 0000, ****
    re.compile(r"<.*>|\[.*\]|\{\{.*\}\}|\$\{.*\}|%[a-z0-9_]+%", re.S),  # <secret>, [token], {{x}}, ${X}, %X%
)
#: The same on its words (``-`` and ``_`` read as spaces): your-token-here, put_secret_here, TODO: set me.
_WORD_SHAPES = re.compile(r"(your|insert|paste|put|todo|tbd|fixme)\b.*|.*\bhere", re.S)


@dataclass(frozen=True)
class Problem:
    variable: str
    severity: Severity
    message: str

    def fatal(self, *, dev: bool) -> bool:
        """``dev`` refuses placeholders and invalid values, and only warns about weak ones."""
        return self.severity != "weak" or not dev


@dataclass(frozen=True)
class _Secret:
    variable: str
    kind: Kind
    what: str
    value: str | None  # None: unset
    required: bool = False  # named by gateway.toml: must be set


def is_placeholder(value: str) -> bool:
    """True for an empty value or an obvious stand-in for a real secret (never for random text)."""
    text = value.strip().lower()
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if not text or re.sub(r"[-_\s]+", "", text) in _WORDS or any(part in text for part in _INSIDE):
        return True
    if any(shape.fullmatch(text) for shape in _SHAPES):
        return True
    return _WORD_SHAPES.fullmatch(re.sub(r"[-_\s]+", " ", text)) is not None


def _value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _configured(settings: Settings, file: GatewayFile) -> Iterator[_Secret]:
    value = _value
    yield _Secret(
        "SLACK_SIGNING_SECRET", "slack_signing_secret", "Slack signing secret", value(settings.slack_signing_secret)
    )
    yield _Secret("SLACK_BOT_TOKEN", "bot_token", "Slack bot token", value(settings.slack_bot_token))
    yield _Secret("SLACK_CLIENT_SECRET", "bot_token", "Slack client secret", value(settings.slack_client_secret))
    key = value(settings.token_encryption_key)
    yield _Secret("GATEWAY_TOKEN_ENCRYPTION_KEY", "fernet_key", "token encryption key", key)
    yield _Secret("TELEGRAM_BOT_TOKEN", "bot_token", "Telegram bot token", value(settings.telegram_bot_token))
    yield _Secret(
        "TELEGRAM_SECRET_TOKEN", "telegram_secret_token", "Telegram secret token", value(settings.telegram_secret_token)
    )
    yield _Secret("WHATSAPP_APP_SECRET", "meta_app_secret", "Meta app secret", value(settings.whatsapp_app_secret))
    yield _Secret(
        "WHATSAPP_VERIFY_TOKEN", "verify_token", "WhatsApp webhook verify token", value(settings.whatsapp_verify_token)
    )
    yield _Secret("WHATSAPP_ACCESS_TOKEN", "bot_token", "WhatsApp access token", value(settings.whatsapp_access_token))
    yield _Secret("TEAMS_APP_PASSWORD", "entra_client_secret", "Teams app password", value(settings.teams_app_password))
    yield _Secret("DISCORD_BOT_TOKEN", "bot_token", "Discord bot token", value(settings.discord_bot_token))
    for name, bot in file.telegram.bots.items():
        what = f"telegram bot {name!r}"
        yield _Secret(bot.token_env, "bot_token", f"{what} token", value(env_secret(bot.token_env)), True)
        token = env_secret(bot.secret_token_env)
        yield _Secret(bot.secret_token_env, "telegram_secret_token", f"{what} secret token", value(token), True)
    for name, src in file.webhooks.sources.items():
        what = f"webhook source {name!r}"
        yield _Secret(src.secret_env, "standard_webhooks", f"{what} secret", value(env_secret(src.secret_env)), True)
        if src.reply_secret_env is not None:
            reply = value(env_secret(src.reply_secret_env))
            yield _Secret(src.reply_secret_env, "standard_webhooks", f"{what} reply secret", reply, True)


def _standard_webhooks(secret: _Secret, value: str) -> Iterator[Problem]:
    parts = value.split()  # several secrets, space separated, for rotation
    for i, part in enumerate(parts, 1):
        which = f"{secret.variable} ({secret.what}" + (f", secret {i} of {len(parts)})" if len(parts) > 1 else ")")
        if is_placeholder(part):
            yield Problem(secret.variable, "placeholder", f"{which} looks like a placeholder, not a real secret")
            continue
        raw = part.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            yield Problem(secret.variable, "invalid", f"{which} is not 'whsec_' + base64 (Standard Webhooks)")
            continue
        if len(key) < STANDARD_WEBHOOKS_KEY_MIN:
            yield Problem(
                secret.variable,
                "weak",
                f"{which} decodes to fewer than {STANDARD_WEBHOOKS_KEY_MIN} bytes; Standard Webhooks keys are 24 to "
                "64 random bytes (e.g. 'whsec_' + `openssl rand -base64 32`)",
            )


def _check(secret: _Secret) -> Iterator[Problem]:
    label = f"{secret.variable} ({secret.what})"
    if secret.value is None:
        if secret.required:
            yield Problem(
                secret.variable, "invalid", f"{secret.what}: environment variable {secret.variable} is not set"
            )
        return
    value = secret.value
    if secret.kind == "standard_webhooks":
        if not value.strip():
            yield Problem(secret.variable, "placeholder", f"{label} is blank, not a real secret")
        yield from _standard_webhooks(secret, value)
        return
    if is_placeholder(value):
        yield Problem(
            secret.variable,
            "placeholder",
            f"{label} looks like a placeholder, not a real secret: set the real value, or unset it to keep the "
            "connector disabled",
        )
        return
    if secret.kind == "fernet_key":
        from connectors.slack.tokencrypt import key_problem  # the key's format is the Slack connector's own

        problem = key_problem(value)
        if problem is not None:
            yield Problem(secret.variable, "invalid", problem)
    if secret.kind == "slack_signing_secret" and len(value) < SLACK_SIGNING_SECRET_MIN:
        yield Problem(
            secret.variable,
            "weak",
            f"{label} is shorter than the {SLACK_SIGNING_SECRET_MIN} characters Slack issues "
            "(api.slack.com/apps → your app → Basic Information → Signing Secret)",
        )
    if secret.kind in MIN_LENGTH and len(value) < MIN_LENGTH[secret.kind][0]:
        hint = MIN_LENGTH[secret.kind][1]
        yield Problem(secret.variable, "weak", f"{label} is shorter than {hint}")
    if secret.kind == "telegram_secret_token":
        if len(value) > TELEGRAM_SECRET_TOKEN_MAX or not _TELEGRAM_CHARS.fullmatch(value):
            yield Problem(
                secret.variable,
                "invalid",
                f"{label} must be 1-256 characters of A-Z a-z 0-9 _ - (what Telegram's setWebhook accepts)",
            )
        elif len(value) < TELEGRAM_SECRET_TOKEN_MIN:
            yield Problem(
                secret.variable,
                "weak",
                f"{label} is shorter than {TELEGRAM_SECRET_TOKEN_MIN} characters; use a random one "
                "(e.g. `openssl rand -hex 32`) and pass the same to setWebhook",
            )


def audit(settings: Settings, file: GatewayFile) -> list[Problem]:
    """Every problem of every configured connector secret, in a stable order."""
    return [problem for secret in _configured(settings, file) for problem in _check(secret)]


def enforce(settings: Settings, file: GatewayFile, *, command: str) -> list[str]:
    """Raise :class:`ConfigError` listing every refused secret; return the warnings ``dev`` lets pass."""
    dev = command == "dev"
    problems = audit(settings, file)
    fatal = [p for p in problems if p.fatal(dev=dev)]
    if fatal:
        raise ConfigError(
            f"gateway {command} refuses to start:\n  "
            + "\n  ".join(p.message for p in fatal)
            + (
                "\n(gateway dev accepts short secrets, with a warning)"
                if any(p.severity == "weak" for p in fatal)
                else ""
            )
        )
    return [f"{p.message}: fine for trying things out; serve and consume refuse it" for p in problems]
