"""The streaming side of a sender: how a growing answer shows on a platform, and what is remembered of it.

A stream arrives as snapshots (``OutboundMessage(action="stream")``, each with all the text so far, the last
one ``final``; agents/streaming.py). A :class:`StreamingSender` brings the platform up to a snapshot: it reads
and changes a :class:`StreamState` (the platform messages the stream has made, and what each shows) and calls
``io.save()`` after every platform call, so the receipt (Slack ``ts``, Telegram ``message_id``) is in the
store before the next call goes out. A consumer that takes over a stream after a crash loads that state and
continues the same messages: it never starts a second one. The one window left is between a call that
creates a message and its save: Slack saves its intent first and looks the message up in the thread when it
finds one (connectors/slack/stream.py); a Telegram bot cannot read its chat, so there a crash in that moment
(as for any reply) shows the start twice. In Telegram private chats the answer is a draft until it is whole.

Long answers are split at the platform's limit (:func:`split`) into parts, one platform message each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from gateway.core.events import OutboundMessage

#: ``native``: the platform's own streaming (Slack chat.*Stream, Telegram drafts); ``edit``: post, then edit.
Mode = Literal["", "native", "edit"]


@dataclass
class Part:
    """One platform message of a stream."""

    #: The platform's id of the message (Slack ``ts``, Telegram ``message_id``); "" while it is only a draft.
    ref: str = ""
    #: The text it shows.
    text: str = ""
    #: A native stream still open on it (Slack), or a draft not yet sent (Telegram).
    native: bool = False
    #: It holds its final text.
    closed: bool = False
    #: A call that is not idempotent (Slack ``appendStream``) was under way when this was saved: the part may
    #: show ``text`` or what it showed before, so it is rewritten in full (``chat.update``) on the next step.
    unsure: bool = False


@dataclass
class StreamState:
    mode: Mode = ""
    parts: list[Part] = field(default_factory=list)
    #: The final snapshot is shown: later (redelivered) snapshots change nothing.
    done: bool = False

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "done": self.done, "parts": [asdict(p) for p in self.parts]})

    @classmethod
    def from_json(cls, raw: str | None) -> StreamState:
        if not raw:
            return cls()
        data: dict[str, Any] = json.loads(raw)
        raw_mode = data.get("mode")
        mode: Mode = "native" if raw_mode == "native" else "edit" if raw_mode == "edit" else ""
        parts = [Part(**{k: v for k, v in p.items() if k in Part.__dataclass_fields__}) for p in data.get("parts", [])]
        return cls(mode=mode, parts=parts, done=bool(data.get("done")))


class StreamIO(Protocol):
    async def pace(self) -> None:
        """Wait until the destination's rate limit lets one more call go (consumers/ratelimit.py)."""
        ...

    async def save(self) -> None:
        """Write the state to the store now (before the next platform call)."""
        ...


class StreamingSender(Protocol):
    platform: str

    async def stream(self, message: OutboundMessage, state: StreamState, io: StreamIO) -> None:
        """Make the platform show ``message.text`` (final when ``message.final``), changing ``state``."""
        ...


def split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after the last newline or space of each when
    there is one in its second half. A piece depends only on the text up to the end of its window, so as
    the text grows the earlier pieces stay what they were."""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n"), window.rfind(" ")) + 1
        if cut <= limit // 2:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def visible(piece: str) -> bool:
    return bool(piece.strip())
