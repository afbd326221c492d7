"""No placeholder or weak secret enables a connector.

A deployment that forgot to fill in a value (the Kubernetes Secret ships ``REPLACE_ME``; compose files
and tutorials say ``changeme``) must not run with it: anyone who read the same manifest could sign
requests. Every secret the gateway reads (from the environment, or from a variable ``gateway.toml``
names) is checked here, by ``check``, ``serve``, ``consume`` and ``dev``. Messages name the variable,
never the value.

``serve`` and ``consume`` also refuse secrets shorter than a sane minimum: Slack signing secrets are 32
characters; a Telegram ``secret_token`` (1-256 of ``A-Za-z0-9_-``, Bot API ``setWebhook``) and a Standard
Webhooks key (24-64 random bytes recommended by the spec) get 16 characters / 16 bytes. ``dev`` only
warns, so the README's ``SLACK_SIGNING_SECRET=dev-secret gateway dev`` keeps working.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import structlog

from connectors.webhooks.signing import secret_key
from gateway.config import GatewayFile
from gateway.errors import ConfigError

log = structlog.get_logger(__name__)

_WORDS = {
    "replace_me", "replaceme", "replace-me", "changeme", "change_me", "change-me", "change-this", "changethis",
    "todo", "tbd", "fixme", "xxx", "xxxx", "xxxxx", "secret", "password", "passwd", "placeholder", "dummy",
    "example", "none", "null", "undefined", "your-secret", "your_secret", "secret-here", "token",
}  # fmt: skip
_PATTERNS = re.compile(
    r"replace[_-]?me|change[_-]?me|^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$|^(your|my|insert|put)[-_ ]|[-_ ]here$|^x+$|^\*+$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SecretVar:
    name: str
    #: Shortest value serve/consume accept (0: no minimum).
    minimum: int = 0
    #: A Standard Webhooks key: the minimum counts decoded bytes of each space-separated ``whsec_`` key.
    webhook_key: bool = False


#: Secrets read straight from the environment. URLs count: a broker password can be a placeholder too.
ENV_SECRETS = (
    SecretVar("SLACK_SIGNING_SECRET", 32),
    SecretVar("SLACK_BOT_TOKEN"),
    SecretVar("TELEGRAM_BOT_TOKEN"),
    SecretVar("TELEGRAM_SECRET_TOKEN", 16),
    SecretVar("OPENAI_API_KEY"),
    SecretVar("AMQP_URL"),
    SecretVar("REDIS_URL"),
)


def is_placeholder(value: str) -> bool:
    v = value.strip()
    return not v or v.lower() in _WORDS or bool(_PATTERNS.search(v))


def _file_secrets(file: GatewayFile) -> list[SecretVar]:
    out: list[SecretVar] = []
    for bot in file.telegram.bots.values():
        out += [SecretVar(bot.token_env), SecretVar(bot.secret_token_env, 16)]
    for src in file.webhooks.sources.values():
        out.append(SecretVar(src.secret_env, 16, webhook_key=True))
        if src.reply_secret_env:
            out.append(SecretVar(src.reply_secret_env, 16, webhook_key=True))
    return out


def _length(var: SecretVar, value: str) -> int:
    if not var.webhook_key:
        return len(value.strip())
    try:
        return min(len(secret_key(part)) for part in value.split())
    except Exception:
        return 0


def problems(file: GatewayFile, *, strict: bool, env: dict[str, str] | None = None) -> list[str]:
    """What is wrong with the secrets that are set; ``strict`` adds the minimum lengths."""
    environ = os.environ if env is None else env
    found: list[str] = []
    seen: set[str] = set()
    for var in (*ENV_SECRETS, *_file_secrets(file)):
        if var.name in seen or var.name not in environ:
            continue
        seen.add(var.name)
        value = environ[var.name]
        if is_placeholder(value):
            found.append(f"{var.name} holds a placeholder or is empty: set the real value, or unset it")
        elif strict and var.minimum and _length(var, value) < var.minimum:
            unit = "bytes (decoded)" if var.webhook_key else "characters"
            found.append(f"{var.name} is too short: at least {var.minimum} {unit} (generate a random one)")
    return found


def enforce(file: GatewayFile, command: str) -> None:
    """Refuse to start ``command`` on a placeholder (any command) or a short secret (serve, consume)."""
    strict = command in ("serve", "consume")
    found = problems(file, strict=strict)
    if found:
        raise ConfigError(f"{command} refuses to start: " + "; ".join(found))
    if not strict:
        for line in problems(file, strict=True):
            log.warning("weak_secret", note=line + "; `gateway serve` and `consume` refuse it")
