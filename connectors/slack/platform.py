"""Slack as a :class:`~connectors.platform.Platform`: Events API, interactivity and slash commands in (signed
v0 HMAC-SHA256), Web API out (slack_sdk), paced per channel and per workspace.

Limits followed (https://api.slack.com/apis/rate-limits): ``chat.postMessage`` allows about one message per
second per channel with short bursts, and a workspace-wide ceiling.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

from aiohttp import web

from connectors.base import Connector
from connectors.outbound import PlatformSender
from connectors.platform import ChatRates, Endpoint, Parts, Platform, SampleRequest
from connectors.slack import lifecycle, oauth
from connectors.slack.connector import SlackConnector
from connectors.slack.sender import SlackSender
from connectors.slack.verify import sign
from gateway.core import samples
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings


def rates(settings: Settings) -> ChatRates:
    """Per channel (chat.postMessage allows about one message per second per channel) and per workspace."""
    return ChatRates("slack", settings.slack_channel_rate, settings.slack_channel_burst, settings.slack_workspace_rate)


def inbound(parts: Parts, notes: list[str]) -> Connector | None:
    settings = parts.settings
    if settings.slack_signing_secret is None:
        notes.append("SLACK_SIGNING_SECRET is not set: the Slack connector is disabled (404)")
        return None
    installations = oauth.installation_store(settings, parts.store) if parts.store is not None else None
    if oauth.oauth_configured(settings):
        notes.append("Slack installs enabled: GET /slack/install; app_uninstalled/tokens_revoked remove a workspace")
    else:
        missing = oauth.missing_settings(settings)
        if len(missing) < 3:
            notes.append(f"Slack installs disabled (404): {', '.join(missing)} not set")
        if settings.slack_bot_token is None:
            notes.append("SLACK_BOT_TOKEN is not set: Slack events are accepted but replies cannot be sent")
    notes.append("Slack connector enabled: POST /slack/events, /slack/interactions, /slack/commands")
    on_removal = functools.partial(lifecycle.apply, installations) if installations is not None else None
    return SlackConnector(
        settings.slack_signing_secret.get_secret_value(), settings.replay_window, on_removal=on_removal
    )


def outbound(parts: Parts) -> PlatformSender | None:
    settings = parts.settings
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token is not None else None
    tokens = oauth.workspace_tokens(settings, parts.store) if parts.store is not None else None
    mode = settings.slack_status
    if tokens is not None:
        return SlackSender(token, settings.slack_api_url, tokens=tokens, status_mode=mode)
    return SlackSender(token, settings.slack_api_url, status_mode=mode) if token is not None else None


def http(parts: Parts) -> Callable[[web.Application], None] | None:
    """``GET /slack/install`` and ``/slack/oauth_redirect`` (404 unless installs are configured)."""
    built = oauth.build_oauth(parts)
    return lambda app: oauth.mount(app, built)


def send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text")
    p.add_argument("--channel", default="C0DEV")
    p.add_argument("--thread", help="thread root ts (omit to start a thread under the message)")
    p.add_argument("--team", default="T0DEV")
    p.description = (
        "Sign a Slack Events API message event with SLACK_SIGNING_SECRET (v0 signature, current timestamp) and "
        "POST it to /slack/events."
    )


def sample(settings: Settings, args: argparse.Namespace) -> SampleRequest:
    if settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is not set: set it to the gateway's secret to sign the event")
    body = samples.slack_message(args.text, channel=args.channel, thread_ts=args.thread, team=args.team)
    ts = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(settings.slack_signing_secret.get_secret_value(), ts, body),
        "Content-Type": "application/json",
    }
    return SampleRequest("/slack/events", body, headers)


PLATFORM = Platform(
    name="slack",
    rate_policy=rates,
    conversation_key="slack:{team}:{channel}:{thread root ts}",
    endpoints=(Endpoint("/slack/{endpoint}"),),
    inbound=inbound,
    outbound=outbound,
    http=http,
    send_arguments=send_arguments,
    sample=sample,
    send_help="a Slack message event",
)
