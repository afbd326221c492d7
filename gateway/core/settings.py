"""Settings: every environment variable of DESIGN.md, read once into one object.

Secrets are :class:`~pydantic.SecretStr` and never appear in ``repr`` or logs.
Tuning knobs beyond the public contract are prefixed ``GATEWAY_`` too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.core.config import GatewayFile, load_config_file


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, case_sensitive=False, env_ignore_empty=True
    )

    host: str = Field("127.0.0.1", validation_alias=_env("GATEWAY_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=_env("GATEWAY_PORT"))
    #: ``gateway serve`` processes sharing GATEWAY_PORT (SO_REUSEPORT) under one supervisor; 0 = one per core.
    serve_workers: int = Field(0, ge=0, le=64, validation_alias=_env("GATEWAY_SERVE_WORKERS"))
    #: ``gateway consume`` serves /healthz, /readyz and /metrics here, so it runs beside ``serve`` as is.
    consume_port: int = Field(8081, ge=0, le=65535, validation_alias=_env("GATEWAY_CONSUME_PORT"))
    namespace: str = Field("gw", validation_alias=_env("GATEWAY_NAMESPACE"), pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    amqp_url: SecretStr | None = Field(None, validation_alias=_env("AMQP_URL"))
    redis_url: SecretStr | None = Field(None, validation_alias=_env("REDIS_URL"))

    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    #: What "the agent is working" looks like in Slack (connectors/slack/status.py): ``assistant``
    #: (assistant.threads.setStatus in DM threads), ``agent`` (agents.sessions.setStatus: processing, then
    #: active, with the Stop button) or ``off``.
    slack_status: Literal["assistant", "agent", "off"] = Field(
        "assistant", validation_alias=_env("GATEWAY_SLACK_STATUS")
    )
    #: Installing across workspaces (connectors/slack/oauth.py): all three set, or the OAuth routes answer 404.
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_CLIENT_SECRET"))
    token_encryption_key: SecretStr | None = Field(None, validation_alias=_env("GATEWAY_TOKEN_ENCRYPTION_KEY"))
    slack_scopes: str = Field(
        "app_mentions:read,channels:history,chat:write,groups:history,im:history,mpim:history,reactions:write",
        validation_alias=_env("SLACK_SCOPES"),
    )
    slack_redirect_uri: str | None = Field(None, validation_alias=_env("SLACK_REDIRECT_URI"))
    slack_authorize_url: str = Field(
        "https://slack.com/oauth/v2/authorize", validation_alias=_env("SLACK_AUTHORIZE_URL")
    )
    #: A rotating bot token is refreshed when it expires within this many seconds.
    slack_rotate_before: float = Field(7200.0, ge=60, validation_alias=_env("GATEWAY_SLACK_ROTATE_BEFORE"))

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_secret_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_SECRET_TOKEN"))
    telegram_api_url: str = Field("https://api.telegram.org", validation_alias=_env("TELEGRAM_API_URL"))

    whatsapp_verify_token: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_VERIFY_TOKEN"))
    whatsapp_app_secret: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_APP_SECRET"))
    whatsapp_access_token: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_ACCESS_TOKEN"))
    whatsapp_api_url: str = Field("https://graph.facebook.com/v25.0", validation_alias=_env("WHATSAPP_API_URL"))

    teams_app_id: str | None = Field(None, validation_alias=_env("TEAMS_APP_ID"))
    teams_app_password: SecretStr | None = Field(None, validation_alias=_env("TEAMS_APP_PASSWORD"))
    teams_openid_metadata_url: str = Field(
        "https://login.botframework.com/v1/.well-known/openidconfiguration",
        validation_alias=_env("TEAMS_OPENID_METADATA_URL"),
    )
    teams_token_url: str = Field(
        "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token", validation_alias=_env("TEAMS_TOKEN_URL")
    )

    #: Discord (connectors/discord): the application's public key (hex; it is public, so not a SecretStr) enables
    #: the interactions endpoint; the bot token the Gateway connection (``gateway discord``) and channel replies.
    discord_public_key: str | None = Field(None, validation_alias=_env("DISCORD_PUBLIC_KEY"))
    discord_bot_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_BOT_TOKEN"))
    discord_application_id: str | None = Field(None, validation_alias=_env("DISCORD_APPLICATION_ID"))
    discord_api_url: str = Field("https://discord.com/api/v10", validation_alias=_env("DISCORD_API_URL"))
    #: ``gateway discord`` serves /healthz, /readyz and /metrics here.
    discord_port: int = Field(8083, ge=0, le=65535, validation_alias=_env("GATEWAY_DISCORD_PORT"))
    #: The Gateway intents: GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT (1 + 512 + 4096 + 32768).
    discord_intents: int = Field(37377, ge=0, validation_alias=_env("GATEWAY_DISCORD_INTENTS"))

    web_secret: SecretStr | None = Field(None, validation_alias=_env("GATEWAY_WEB_SECRET"))
    #: Platforms from outside this repository: ``package.module:PLATFORM`` import paths, comma-separated.
    extra_platforms: str | None = Field(None, validation_alias=_env("GATEWAY_PLATFORMS"))

    config_path: Path | None = Field(None, validation_alias=_env("GATEWAY_CONFIG"))
    default_agent: str = Field("echo", validation_alias=_env("GATEWAY_DEFAULT_AGENT"))

    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    #: Anthropic's Messages API for agents with ``provider = "anthropic"`` (agents/providers.py reads the
    #: variable an agent's or route's ``api_key_env`` names; this is the default one).
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    llm_model: str | None = Field(None, validation_alias=_env("GATEWAY_LLM_MODEL"))
    llm_instructions: str | None = Field(None, validation_alias=_env("GATEWAY_LLM_INSTRUCTIONS"))
    #: Who streams an OpenAI-compatible model's answer: ``fast`` (agents/sse.py, aiohttp + orjson) or ``sdk``
    #: (the ``openai`` SDK). Read by agents/models.py from the environment (providers build models without Settings).
    model_client: Literal["fast", "sdk"] = Field("fast", validation_alias=_env("GATEWAY_MODEL_CLIENT"))

    log_format: Literal["json", "console"] | None = Field(None, validation_alias=_env("GATEWAY_LOG_FORMAT"))
    log_level: str = Field("info", validation_alias=_env("GATEWAY_LOG_LEVEL"))
    #: off | otlp | console; unset: otlp when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (gateway/core/tracing.py).
    tracing: str | None = Field(None, validation_alias=_env("GATEWAY_TRACING"))

    # Tuning beyond the public contract.
    partitions: int = Field(16, ge=1, le=1024, validation_alias=_env("GATEWAY_PARTITIONS"))
    prefetch: int = Field(64, ge=1, le=10_000, validation_alias=_env("GATEWAY_PREFETCH"))
    #: A connection that has not sent a complete request within this many seconds (slow or partial headers)
    #: or stays idle between requests this long is closed.
    header_timeout: float = Field(15.0, gt=0, validation_alias=_env("GATEWAY_HEADER_TIMEOUT"))
    #: Seconds a request body may take to arrive; a slower one is answered 408.
    body_timeout: float = Field(10.0, gt=0, validation_alias=_env("GATEWAY_BODY_TIMEOUT"))
    max_body_bytes: int = Field(1024 * 1024, ge=1024, validation_alias=_env("GATEWAY_MAX_BODY_BYTES"))
    publish_timeout: float = Field(2.0, gt=0, le=2.5, validation_alias=_env("GATEWAY_PUBLISH_TIMEOUT"))
    replay_window: int = Field(300, ge=1, validation_alias=_env("GATEWAY_REPLAY_WINDOW"))
    dedupe_ttl: int = Field(24 * 3600, ge=60, validation_alias=_env("GATEWAY_DEDUPE_TTL"))
    lease_ttl: float = Field(10.0, ge=1.0, validation_alias=_env("GATEWAY_LEASE_TTL"))
    idle_release: float = Field(1800.0, gt=0, validation_alias=_env("GATEWAY_IDLE_RELEASE"))
    warm_pool: int = Field(10_000, ge=1, validation_alias=_env("GATEWAY_WARM_POOL"))
    history_window: int = Field(50, ge=0, validation_alias=_env("GATEWAY_HISTORY_WINDOW"))
    #: Retention, refreshed by every write: a conversation's history and an agent's memory of it are
    #: deleted this many seconds after their last turn or memory write. 0 keeps them forever.
    history_ttl: float = Field(30 * 24 * 3600.0, ge=0, validation_alias=_env("GATEWAY_HISTORY_TTL"))
    memory_ttl: float = Field(90 * 24 * 3600.0, ge=0, validation_alias=_env("GATEWAY_MEMORY_TTL"))
    #: While a turn runs (after its first second), a typing indicator every this many seconds; 0: off.
    typing_every: float = Field(4.0, ge=0, validation_alias=_env("GATEWAY_TYPING_EVERY"))
    #: Appended to the partial reply of a turn that was stopped (busy = "interrupt", a stop word, Slack's
    #: Stop button); empty: nothing is added, and a stopped turn that had produced nothing posts nothing.
    interrupt_marker: str = Field("…(stopped)", max_length=200, validation_alias=_env("GATEWAY_INTERRUPT_MARKER"))
    #: Stream answers as the model writes them, on every route that does not say (``stream`` in a route).
    stream: bool = Field(False, validation_alias=_env("GATEWAY_STREAM"))
    turn_attempts: int = Field(3, ge=1, validation_alias=_env("GATEWAY_TURN_ATTEMPTS"))
    retry_base: float = Field(1.0, ge=0, validation_alias=_env("GATEWAY_RETRY_BASE"))
    send_attempts: int = Field(5, ge=1, validation_alias=_env("GATEWAY_SEND_ATTEMPTS"))
    drain_delay: float = Field(1.0, ge=0, validation_alias=_env("GATEWAY_DRAIN_DELAY"))
    shutdown_grace: float = Field(20.0, ge=0, validation_alias=_env("GATEWAY_SHUTDOWN_GRACE"))
    turn_timeout: float = Field(300.0, gt=0, validation_alias=_env("GATEWAY_TURN_TIMEOUT"))
    # Outbound rate limits (per second unless named otherwise); see consumers/ratelimit.py.
    slack_channel_rate: float = Field(1.0, gt=0, validation_alias=_env("GATEWAY_SLACK_CHANNEL_RATE"))
    slack_channel_burst: float = Field(3.0, ge=1, validation_alias=_env("GATEWAY_SLACK_CHANNEL_BURST"))
    slack_workspace_rate: float = Field(50.0, gt=0, validation_alias=_env("GATEWAY_SLACK_WORKSPACE_RATE"))
    telegram_chat_rate: float = Field(1.0, gt=0, validation_alias=_env("GATEWAY_TELEGRAM_CHAT_RATE"))
    telegram_chat_burst: float = Field(3.0, ge=1, validation_alias=_env("GATEWAY_TELEGRAM_CHAT_BURST"))
    telegram_group_per_minute: float = Field(20.0, gt=0, validation_alias=_env("GATEWAY_TELEGRAM_GROUP_PER_MINUTE"))
    telegram_bot_rate: float = Field(30.0, gt=0, validation_alias=_env("GATEWAY_TELEGRAM_BOT_RATE"))
    whatsapp_number_rate: float = Field(80.0, gt=0, validation_alias=_env("GATEWAY_WHATSAPP_NUMBER_RATE"))
    whatsapp_user_rate: float = Field(1 / 6, gt=0, validation_alias=_env("GATEWAY_WHATSAPP_USER_RATE"))
    whatsapp_user_burst: float = Field(3.0, ge=1, validation_alias=_env("GATEWAY_WHATSAPP_USER_BURST"))
    teams_conversation_rate: float = Field(0.5, gt=0, validation_alias=_env("GATEWAY_TEAMS_CONVERSATION_RATE"))
    teams_conversation_burst: float = Field(7.0, ge=1, validation_alias=_env("GATEWAY_TEAMS_CONVERSATION_BURST"))
    teams_tenant_rate: float = Field(50.0, gt=0, validation_alias=_env("GATEWAY_TEAMS_TENANT_RATE"))
    discord_channel_rate: float = Field(1.0, gt=0, validation_alias=_env("GATEWAY_DISCORD_CHANNEL_RATE"))
    discord_channel_burst: float = Field(5.0, ge=1, validation_alias=_env("GATEWAY_DISCORD_CHANNEL_BURST"))
    discord_bot_rate: float = Field(50.0, gt=0, validation_alias=_env("GATEWAY_DISCORD_BOT_RATE"))
    consumer_id: str | None = Field(None, validation_alias=_env("GATEWAY_CONSUMER_ID"))

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, v: str) -> str:
        # slack_sdk joins method names onto base_url without adding a slash.
        return v if v.endswith("/") else v + "/"

    @field_validator("telegram_api_url", "discord_api_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format:
            return self.log_format
        return "console" if sys.stderr.isatty() else "json"

    def load_file(self) -> GatewayFile:
        """The parsed ``gateway.toml`` (empty when ``GATEWAY_CONFIG`` is unset)."""
        return load_config_file(self.config_path)
