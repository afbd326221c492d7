"""``gateway send``: sign a sample event with the configured secret and post it, like ``stripe trigger``.

gateway send slack "hello" [--channel C0DEV] [--thread TS]
gateway send telegram "hello" [--bot default] [--chat 1111111] [--topic 23]
gateway send webhook SOURCE "hello" [--customer cus_dev]

The webhook event is built from SOURCE's JSON pointers in gateway.toml (customer_pointer, text_pointer,
type_pointer) and signed with the first secret of its secret_env. It goes to --url, default
http://GATEWAY_HOST:GATEWAY_PORT; exit status 0 when the gateway answered 200.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import aiohttp

from connectors.slack.verify import sign as slack_sign
from connectors.webhooks import jsonpointer
from connectors.webhooks.signing import secret_key, signature_headers
from gateway import samples, tracing
from gateway.commands.parsers import documented_parser
from gateway.config import WebhookSourceConfig
from gateway.errors import ConfigError
from gateway.settings import Settings


def _slack(settings: Settings, args: argparse.Namespace) -> tuple[str, bytes, dict[str, str]]:
    if settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is not set: set it to the gateway's secret to sign the event")
    body = samples.slack_message(args.text, channel=args.channel, thread_ts=args.thread, team=args.team)
    ts = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_sign(settings.slack_signing_secret.get_secret_value(), ts, body),
        "Content-Type": "application/json",
    }
    return "/slack/events", body, headers


def _telegram(settings: Settings, args: argparse.Namespace) -> tuple[str, bytes, dict[str, str]]:
    if args.bot == "default":
        if settings.telegram_secret_token is None:
            raise ConfigError("TELEGRAM_SECRET_TOKEN is not set: set it to the gateway's secret token")
        secret = settings.telegram_secret_token.get_secret_value()
    else:
        bots = settings.load_file().telegram.bots
        if args.bot not in bots:
            raise ConfigError(f"no Telegram bot {args.bot!r} in gateway.toml")
        secret = bots[args.bot].secret_token(args.bot).get_secret_value()
    body = samples.telegram_message(args.text, chat_id=args.chat, topic=args.topic)
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
    return f"/telegram/{args.bot}", body, headers


def webhook_body(source: WebhookSourceConfig, name: str, text: str, customer: str) -> bytes:
    """A sample event shaped by the source's own JSON pointers (``customer_pointer``, ``text_pointer``,
    ``type_pointer``), so the gateway finds the customer and text where that source puts them."""
    values: dict[str, str] = {source.customer_pointer: customer, source.text_pointer: text}
    if source.type_pointer:
        values.setdefault(source.type_pointer, "message.created")
    try:
        return json.dumps(jsonpointer.build(values)).encode()
    except ValueError as exc:
        raise ConfigError(f"webhooks.sources.{name}: cannot build a sample event: {exc}") from exc


def _webhook(settings: Settings, args: argparse.Namespace) -> tuple[str, bytes, dict[str, str]]:
    sources = settings.load_file().webhooks.sources
    if args.source not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(f"no webhook source {args.source!r} in gateway.toml (GATEWAY_CONFIG); known: {known}")
    source = sources[args.source]
    key = secret_key(source.secrets(args.source)[0].get_secret_value())
    body = webhook_body(source, args.source, args.text, args.customer)
    headers = signature_headers(key, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    headers["Content-Type"] = "application/json"
    return f"/webhooks/{args.source}", body, headers


_BUILDERS = {"slack": _slack, "telegram": _telegram, "webhook": _webhook}


async def run_send(settings: Settings, args: argparse.Namespace) -> int:
    path, body, headers = _BUILDERS[args.platform](settings, args)
    url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/") + path
    async with aiohttp.ClientSession() as session:
        with tracing.span(f"gateway send {args.platform}", kind="client", attributes={"url.full": url}) as current:
            tracing.inject(headers)  # the gateway's trace of this event continues this one
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    text = await resp.text()
            except aiohttp.ClientError as exc:
                tracing.set_error(current, str(exc))
                print(f"could not reach the gateway at {url}: {exc}")
                return 1
            tracing.set_attributes(current, **{"http.response.status_code": resp.status})
    print(f"POST {url} -> {resp.status} {text}".rstrip())
    return 0 if resp.status == 200 else 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(sub, "send", help="sign and post a sample event to a running gateway", doc=__doc__)
    p.add_argument("--url", help="gateway base URL (default http://GATEWAY_HOST:GATEWAY_PORT)")
    platforms = p.add_subparsers(dest="platform", required=True)
    s = platforms.add_parser("slack", help="a Slack message event")
    s.add_argument("text")
    s.add_argument("--channel", default="C0DEV")
    s.add_argument("--thread", help="thread root ts (omit to start a thread under the message)")
    s.add_argument("--team", default="T0DEV")
    t = platforms.add_parser("telegram", help="a Telegram message update")
    t.add_argument("text")
    t.add_argument("--bot", default="default")
    t.add_argument("--chat", type=int, default=1111111)
    t.add_argument("--topic", type=int, help="forum topic (message_thread_id)")
    w = platforms.add_parser("webhook", help="a Standard Webhooks event for a configured source")
    w.add_argument("source")
    w.add_argument("text")
    w.add_argument("--customer", default="cus_dev")
    s.description = (
        "Sign a Slack Events API message event with SLACK_SIGNING_SECRET (v0 signature, current timestamp) and "
        "POST it to /slack/events."
    )
    t.description = (
        "POST a Telegram message update to /telegram/BOT with that bot's secret token (TELEGRAM_SECRET_TOKEN for "
        "'default', the bot's secret_token_env from gateway.toml otherwise)."
    )
    w.description = (
        "POST a Standard Webhooks event to /webhooks/SOURCE, signed with the first secret of SOURCE's secret_env; "
        "the body puts the customer and text where SOURCE's customer_pointer and text_pointer say."
    )
    for platform in (s, t, w):  # `gateway send slack "hi" --url URL` works too
        platform.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(run=run_send)
