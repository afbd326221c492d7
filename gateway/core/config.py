"""``gateway.toml``: more Telegram bots, webhook sources, agents and routes.

Secrets never live in the file: a bot or source names the environment
variables that hold them (``token_env``, ``secret_env``). Example::

    [telegram.bots.support]
    token_env = "SUPPORT_BOT_TOKEN"
    secret_token_env = "SUPPORT_BOT_SECRET"

    [webhooks.sources.shop]
    secret_env = "SHOP_WEBHOOK_SECRET"     # several secrets, space separated, for rotation
    customer_pointer = "/customer/id"
    text_pointer = "/message/text"
    reply_url = "https://shop.example.com/agent-replies"
    reply_secret_env = "SHOP_REPLY_SECRET"  # signs callbacks; defaults to the first inbound secret

    [agents.support]
    path = "examples.support_agent:agent"

    [[routes]]
    platform = "slack"
    channel = "C0123"
    agent = "support"
    key = "channel"        # thread (default) | channel | user
    busy = "collect"       # queue (default) | collect | interrupt
    stop_words = ["stop"]  # a message that is one of these stops the running turn and starts none
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.core.errors import ConfigError

KeyGranularity = Literal["thread", "channel", "user", "customer"]
BusyPolicy = Literal["queue", "collect", "interrupt"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def env_secret(var: str) -> SecretStr | None:
    """The value of a variable that ``gateway.toml`` names; None when unset or empty."""
    value = os.environ.get(var)
    return SecretStr(value) if value else None


def _secret_from_env(var: str | None, what: str) -> SecretStr | None:
    if var is None:
        return None
    secret = env_secret(var)
    if secret is None:
        raise ConfigError(f"{what}: environment variable {var} is not set")
    return secret


class TelegramBotConfig(_Strict):
    token_env: str
    secret_token_env: str
    api_url: str | None = None

    def token(self, name: str) -> SecretStr:
        secret = _secret_from_env(self.token_env, f"telegram bot {name!r} token")
        assert secret is not None
        return secret

    def secret_token(self, name: str) -> SecretStr:
        secret = _secret_from_env(self.secret_token_env, f"telegram bot {name!r} secret token")
        assert secret is not None
        return secret


class WebhookSourceConfig(_Strict):
    secret_env: str
    customer_pointer: str = "/customer_id"
    text_pointer: str = "/text"
    type_pointer: str | None = "/type"
    reply_url: str | None = None
    reply_secret_env: str | None = None
    #: A streamed answer as signed ``agent.reply.delta`` callbacks and then the final ``agent.reply``
    #: (``chunked``), or the final callback only (``final``, the default).
    stream: Literal["final", "chunked"] = "final"

    def secrets(self, name: str) -> list[SecretStr]:
        raw = _secret_from_env(self.secret_env, f"webhook source {name!r} secret")
        assert raw is not None
        return [SecretStr(s) for s in raw.get_secret_value().split()]

    def reply_secret(self, name: str) -> SecretStr:
        explicit = _secret_from_env(self.reply_secret_env, f"webhook source {name!r} reply secret")
        return explicit if explicit is not None else self.secrets(name)[0]


class BudgetConfig(_Strict):
    """Token budgets (input + output, from the provider's usage): when one is spent the turn ends with
    ``budget_message`` as its reply and no model call. Unset: no budget."""

    budget_tokens_per_conversation: int | None = Field(None, ge=1)
    #: All conversations of this agent (or route) in one UTC day.
    budget_tokens_per_day: int | None = Field(None, ge=1)
    budget_message: str | None = Field(None, min_length=1)


class AgentConfig(BudgetConfig):
    path: str
    options: dict[str, object] = Field(default_factory=dict)
    #: The model of a declarative agent (agents/providers.py); unset keeps the agent's own model.
    provider: Literal["openai", "anthropic"] | None = None
    model: str | None = None
    #: The environment variable that holds the key (default ANTHROPIC_API_KEY or OPENAI_API_KEY).
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str | None = None
    #: Anthropic's required ``max_tokens`` per answer.
    max_tokens: int | None = Field(None, ge=1)
    #: ``"provider:model"`` entries tried in order when the model before fails with 5xx, 529 or a timeout.
    fallback: list[str] = Field(default_factory=list)


class RouteConfig(BudgetConfig):
    #: A platform's name (slack, telegram, webhook, web, or one from GATEWAY_PLATFORMS); checked at start-up.
    platform: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    #: Slack team, Telegram bot name or webhook source; None matches any.
    bot: str | None = None
    #: Slack channel id or Telegram chat id; None matches any.
    channel: str | None = None
    agent: str | None = None
    key: KeyGranularity = "thread"
    busy: BusyPolicy = "queue"
    #: Messages that stop the conversation's running turn instead of starting one (compared without case,
    #: surrounding spaces, trailing punctuation or a leading @-mention of the bot).
    stop_words: list[str] = Field(default_factory=list, max_length=32)
    #: Session events (the user opened the assistant thread or the Messages tab, or its context changed:
    #: ``event.kind == "session"``, no text) start turns, so the agent can greet, set suggested prompts
    #: or a title. Off: they are acked and counted as skipped.
    session_events: bool = False
    #: Stream answers as they are written (None: ``GATEWAY_STREAM``); see agents/streaming.py.
    stream: bool | None = None
    #: The named session its conversations run in (own history, memory and state); unset: ``default``, or
    #: the one the agent switched to.
    session: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    #: The route's name in usage counts (``gateway status --usage``, metrics); default platform:bot:channel.
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:*-]{1,64}$")
    #: This route's own model key (bring your own key): replaces the agent's primary provider key.
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @property
    def label(self) -> str:
        return self.name or f"{self.platform}:{self.bot or '*'}:{self.channel or '*'}"


class TelegramSection(_Strict):
    bots: dict[str, TelegramBotConfig] = Field(default_factory=dict)


class WebhookSection(_Strict):
    sources: dict[str, WebhookSourceConfig] = Field(default_factory=dict)


class WebSiteConfig(_Strict):
    """A site that embeds the chat. Its visitor tokens are signed with ``secret_env`` (default:
    ``GATEWAY_WEB_SECRET``), so the site's own server can mint them for its logged-in users."""

    secret_env: str | None = None
    #: Origins allowed to call the API from a browser (``https://shop.example.com``); the gateway's own
    #: origin is always allowed.
    allowed_origins: list[str] = Field(default_factory=list)

    def secret(self, name: str) -> SecretStr | None:
        return _secret_from_env(self.secret_env, f"web site {name!r} secret")


class WebAppConfig(_Strict):
    """An app using the API with a key (``Authorization: Bearer ...``): conversations ``web:{app}:*``."""

    key_env: str

    def key(self, name: str) -> SecretStr:
        secret = _secret_from_env(self.key_env, f"web app {name!r} API key")
        assert secret is not None
        return secret


class WebSection(_Strict):
    sites: dict[str, WebSiteConfig] = Field(default_factory=dict)
    apps: dict[str, WebAppConfig] = Field(default_factory=dict)
    #: Messages per second and burst per visitor or app key.
    rate: float = 1.0
    burst: float = 5.0
    #: Longest message text accepted from a browser or app.
    max_text: int = 4000


class HandoffConfig(_Strict):
    """Where a human handoff is announced (gateway/core/handoff.py): a Slack channel, a signed callback, both.
    Neither set: conversations still go to ``human`` state, and ``gateway handoff --list`` shows them."""

    #: The channel id the notice is posted in (through the Slack sender, like a reply).
    slack_channel: str | None = Field(None, pattern=r"^[CGD][A-Z0-9]{2,}$")
    #: The workspace of ``slack_channel`` when the app is installed in several (default: the conversation's).
    slack_team: str | None = None
    #: A URL that receives a Standard Webhooks signed ``gateway.handoff`` callback.
    webhook_url: str | None = Field(None, pattern=r"^https?://")
    #: The variable holding the ``whsec_...`` secret that signs those callbacks (required with webhook_url).
    webhook_secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: Said in the conversation itself when an operator releases it ("" says nothing there).
    release_text: str = Field("You're back with the assistant.", max_length=4000)

    @model_validator(mode="after")
    def _secret_with_url(self) -> HandoffConfig:
        if self.webhook_url and not self.webhook_secret_env:
            raise ValueError("webhook_url needs webhook_secret_env: the variable whose secret signs the callbacks")
        return self

    def webhook_secret(self) -> SecretStr | None:
        return _secret_from_env(self.webhook_secret_env, "[handoff] webhook secret") if self.webhook_url else None


class GatewayFile(_Strict):
    telegram: TelegramSection = Field(default_factory=TelegramSection)
    webhooks: WebhookSection = Field(default_factory=WebhookSection)
    web: WebSection = Field(default_factory=WebSection)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)


def load_config_file(path: Path | None) -> GatewayFile:
    if path is None:
        return GatewayFile()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"GATEWAY_CONFIG points to {path}, which does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read GATEWAY_CONFIG {path}: {exc}") from exc
    try:
        return GatewayFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
