"""WhatsApp ingress: ``GET /whatsapp`` (the subscription handshake) and ``POST /whatsapp`` (notifications).

Verification and parsing are CPU only (``handle``); ``handle_async`` then records, for each user message,
when that user last wrote (the 24-hour customer service window, window.py) before the events are published.
A store that does not answer makes the request 503, so Meta delivers it again.
"""

from __future__ import annotations

import asyncio

from connectors.base import ConnectorResult, InboundRequest, parse_json_object
from connectors.whatsapp import verify, window
from connectors.whatsapp.parse import Inbound, parse
from gateway.core.errors import MalformedPayload
from gateway.core.store.base import Store


class WhatsAppConnector:
    platform = "whatsapp"

    def __init__(self, app_secret: str, verify_token: str, store: Store | None = None) -> None:
        self._app_secret = app_secret
        self._verify_token = verify_token
        self._store = store

    def handles(self, target: str) -> bool:
        return target == "whatsapp"

    def handle(self, request: InboundRequest) -> ConnectorResult:
        return self._handle(request)[0]

    def _handle(self, request: InboundRequest) -> tuple[ConnectorResult, list[Inbound]]:
        if request.method == "GET":
            return ConnectorResult(body=verify.challenge(self._verify_token, request.query).encode()), []
        if request.method != "POST":
            raise MalformedPayload(f"{request.method} is not a WhatsApp request", platform="whatsapp")
        verify.check_signature(self._app_secret, request.headers, request.body)
        events, inbound = parse(parse_json_object(request.body, platform="whatsapp"), request.now)
        return ConnectorResult(events=events), inbound

    async def handle_async(self, request: InboundRequest) -> ConnectorResult:
        result, inbound = self._handle(request)
        if self._store is not None and inbound:
            # The newest message of each user, all recorded at once (one batch on Redis, not two round trips
            # per message in a row). StoreUnavailable: not recorded, so not accepted (503).
            latest: dict[tuple[str, str], float] = {}
            for message in inbound:
                who = (message.number, message.user)
                latest[who] = max(message.at, latest.get(who, message.at))
            store = self._store
            await asyncio.gather(*(window.record(store, number, user, at) for (number, user), at in latest.items()))
        return result
