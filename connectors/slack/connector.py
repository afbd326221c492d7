"""Slack ingress: ``/slack/events``, ``/slack/interactions``, ``/slack/commands``.

Every endpoint is verified with the signing secret before anything is parsed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from connectors.base import ConnectorResult, InboundRequest, parse_json_body, parse_json_object
from connectors.slack import lifecycle, parse, verify
from gateway.core.errors import MalformedPayload, NotFound

ENDPOINTS = ("events", "interactions", "commands")


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload("body is not a form (application/x-www-form-urlencoded)", platform="slack") from exc


class SlackConnector:
    platform = "slack"

    def __init__(
        self,
        signing_secret: str,
        replay_window: int = 300,
        *,
        on_removal: Callable[[lifecycle.Removal], Awaitable[None]] | None = None,
    ) -> None:
        self._secret = signing_secret
        self._window = replay_window
        #: ``app_uninstalled``/``tokens_revoked`` (set when the app is installed across workspaces).
        self._on_removal = on_removal

    def handles(self, target: str) -> bool:
        return target in ENDPOINTS

    def handle(self, request: InboundRequest) -> ConnectorResult:
        if request.target not in ENDPOINTS:
            raise NotFound(f"no Slack endpoint {request.target!r}", platform="slack")
        verify.verify(self._secret, request.headers, request.body, request.now, self._window)
        if request.target == "events":
            return self._events(request.body)
        form = _form(request.body)
        if request.target == "commands":
            if form.get("ssl_check") == "1":
                return ConnectorResult()
            if "command" not in form:
                raise MalformedPayload("slash command form has no 'command' field", platform="slack")
            return ConnectorResult(events=[parse.event_from_command(form)])
        if "payload" not in form:
            raise MalformedPayload("interaction form has no 'payload' field", platform="slack")
        payload = parse_json_object(form["payload"].encode(), platform="slack")
        return ConnectorResult(events=[parse.event_from_interaction(payload)])

    def _events(self, body: bytes) -> ConnectorResult:
        envelope, strict = parse_json_body(body, platform="slack")
        kind = envelope.get("type")
        if kind == "url_verification":
            challenge = envelope.get("challenge")
            if not isinstance(challenge, str):
                raise MalformedPayload("url_verification without a challenge", platform="slack")
            return ConnectorResult(body=json.dumps({"challenge": challenge}).encode(), content_type="application/json")
        if kind == "ssl_check":
            return ConnectorResult()
        if kind != "event_callback":
            raise MalformedPayload("unsupported Events API envelope type", platform="slack")
        if not envelope.get("event_id") or not isinstance(envelope.get("event"), dict):
            raise MalformedPayload("event_callback without event_id or event", platform="slack")
        events = [parse.event_from_callback(envelope)]  # raw is the envelope: the body's bytes stand for it
        raw_json = body if strict else None
        removal = lifecycle.removal(envelope) if self._on_removal is not None else None
        if removal is not None and self._on_removal is not None:
            effects = (functools.partial(self._on_removal, removal),)
            return ConnectorResult(events=events, effects=effects, raw_json=raw_json)
        return ConnectorResult(events=events, raw_json=raw_json)
