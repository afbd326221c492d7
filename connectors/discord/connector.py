"""Discord interactions ingress: ``POST /discord/interactions``.

Verify (Ed25519, verify.py), then answer by interaction type, in the HTTP response, as Discord asks within
3 seconds:

- ``PING`` (1): ``{"type": 1}`` (PONG), nothing published;
- ``APPLICATION_COMMAND`` (2), ``MESSAGE_COMPONENT`` (3), ``MODAL_SUBMIT`` (5): the event is published, and only
  once RabbitMQ confirmed it the answer is ``{"type": 5}`` (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: Discord shows
  "thinking..." until the agent's reply edits it, sender.py); when it cannot be queued the answer is 503 and
  Discord shows the user that the interaction failed: never a deferral for an event not queued;
- autocomplete (4): ``{"type": 8, "data": {"choices": []}}`` (no turn: suggestions must come within 3 s).

A repeated delivery of one interaction (same id) is answered ``{"type": 5}`` again and not published twice.
"""

from __future__ import annotations

import json

from nacl.signing import VerifyKey

from connectors.base import ConnectorResult, InboundRequest, parse_json_object
from connectors.discord import verify
from connectors.discord.parse import AUTOCOMPLETE, PING, event_from_interaction
from gateway.core.errors import MalformedPayload

PONG = json.dumps({"type": 1}).encode()
DEFERRED = json.dumps({"type": 5}).encode()
NO_CHOICES = json.dumps({"type": 8, "data": {"choices": []}}).encode()


class DiscordConnector:
    platform = "discord"

    def __init__(self, key: VerifyKey, window: int) -> None:
        self._key = key
        self._window = window

    def handles(self, target: str) -> bool:
        return target == "interactions"

    def handle(self, request: InboundRequest) -> ConnectorResult:
        verify.check(self._key, request.headers, request.body, request.now, self._window)
        interaction = parse_json_object(request.body, platform="discord")
        kind = interaction.get("type")
        if kind == PING:
            return ConnectorResult(body=PONG, content_type="application/json")
        if kind == AUTOCOMPLETE:
            return ConnectorResult(body=NO_CHOICES, content_type="application/json")
        if not isinstance(kind, int):
            raise MalformedPayload("the interaction has no type", platform="discord")
        event = event_from_interaction(interaction)
        return ConnectorResult(events=[event], body=DEFERRED, content_type="application/json")
