"""Teams ingress: ``POST /teams/messages``, the bot's messaging endpoint.

``handle_async`` first makes the token's signing key known (keys.py: fetched, cached, refreshed on an
unknown key id), then ``handle`` verifies (auth.py) and parses (parse.py), CPU only. The token is checked
before the body is trusted: an unauthenticated request is 401 whatever its body.
"""

from __future__ import annotations

from connectors.base import ConnectorResult, InboundRequest, parse_json_object
from connectors.teams import auth
from connectors.teams.keys import SigningKeys
from connectors.teams.parse import event_from_activity


class TeamsConnector:
    platform = "teams"

    def __init__(self, app_id: str, keys: SigningKeys) -> None:
        self._app_id = app_id
        self._keys = keys

    def handles(self, target: str) -> bool:
        return target == "messages"

    def handle(self, request: InboundRequest) -> ConnectorResult:
        claims, key = auth.verify_token(auth.bearer(request.headers), self._keys, self._app_id)
        activity = parse_json_object(request.body, platform="teams")
        auth.check_activity(claims, key, activity)
        return ConnectorResult(events=[event_from_activity(activity)])

    async def handle_async(self, request: InboundRequest) -> ConnectorResult:
        await self._keys.ensure(auth.key_id(auth.bearer(request.headers)))
        return self.handle(request)
