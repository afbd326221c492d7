"""The web's outbound side, run by ``gateway consume``: a reply becomes a transcript entry plus a hint.

No platform API to call: "sending" is recording the reply where every serve process can read it and
announcing it on the web fanout exchange. The sent markers of the outbound worker keep a redelivered
turn from recording a reply twice, and the entry's id (the outbound message id) lets the page drop a
copy it has already shown.
"""

from __future__ import annotations

from typing import Any

from connectors.web import transcript
from gateway.core.bus.base import Bus
from gateway.core.events import OutboundMessage
from gateway.core.store.base import Store


class WebSender:
    platform = "web"

    def __init__(self, store: Store, bus: Bus, *, ttl: float | None = transcript.TTL) -> None:
        self._store = store
        self._bus = bus
        self._ttl = ttl

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        key = message.conversation_key
        if message.action == "typing":
            await transcript.announce(self._bus, key, {"type": "typing"})
            return {"ok": True}
        if message.action == "react":
            item = transcript.entry(message.id, "agent", "", reaction=message.emoji, target=message.target_message)
        else:
            item = transcript.entry(message.id, "agent", message.text, action=message.action)
        await transcript.append(self._store, self._bus, key, item, ttl=self._ttl)
        return {"ok": True, "id": message.id}

    async def close(self) -> None:
        return None
