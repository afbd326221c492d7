"""Which channels are threads, and of which channel: a MESSAGE_CREATE names only its ``channel_id``.

Learnt from the dispatches the GUILDS intent brings (GUILD_CREATE's ``channels`` and ``threads``,
THREAD_CREATE/UPDATE, THREAD_LIST_SYNC, CHANNEL_CREATE/UPDATE); a channel not seen that way is looked up
once with ``GET /channels/{id}`` by the caller. Threads are channel types 10, 11 and 12 with a ``parent_id``.
"""

from __future__ import annotations

from typing import Any

from connectors.discord.parse import THREAD_TYPES

#: Entries kept; past it the map starts over (a lookup costs one REST call per channel).
LIMIT = 100_000


class Channels:
    def __init__(self) -> None:
        self._parent: dict[str, str | None] = {}

    def learn(self, channel: object) -> None:
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            return
        if len(self._parent) >= LIMIT:
            self._parent.clear()
        parent = channel.get("parent_id")
        is_thread = channel.get("type") in THREAD_TYPES and isinstance(parent, str)
        self._parent[channel["id"]] = parent if is_thread else None

    def on_dispatch(self, event: str, data: dict[str, Any]) -> None:
        if event == "GUILD_CREATE":
            for channel in [*(data.get("channels") or []), *(data.get("threads") or [])]:
                self.learn(channel)
        elif event in ("THREAD_CREATE", "THREAD_UPDATE", "CHANNEL_CREATE", "CHANNEL_UPDATE"):
            self.learn(data)
        elif event == "THREAD_LIST_SYNC":
            for thread in data.get("threads") or []:
                self.learn(thread)

    def known(self, channel: str) -> bool:
        return channel in self._parent

    def parent(self, channel: str) -> str | None:
        return self._parent.get(channel)
