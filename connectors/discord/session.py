"""The Gateway session ``gateway discord`` can resume, kept in the store so a restarted process resumes it.

Key ``discord:gateway:session`` (under the namespace): the ``session_id``, the last ``seq`` whose dispatch was
handled (a MESSAGE_CREATE: published with confirm), the session's ``resume_gateway_url`` and the bot's user id.
It expires ``SESSION_TTL`` seconds after the last write (every handled message and every heartbeat ACK write it):
Discord keeps a disconnected session resumable for a short while only, and after that a RESUME would be
answered INVALID_SESSION anyway.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from gateway.core.store.base import Store

KEY = "discord:gateway:session"
SESSION_TTL = 300.0


@dataclass
class ResumeState:
    session_id: str | None = None
    seq: int | None = None
    resume_url: str | None = None
    bot_id: str | None = None

    @property
    def resumable(self) -> bool:
        return bool(self.session_id and self.resume_url)

    def forget(self) -> None:
        self.session_id = self.seq = self.resume_url = None


async def load(store: Store) -> ResumeState:
    raw = await store.get(KEY)
    if not raw:
        return ResumeState()
    try:
        data = json.loads(raw)
        return ResumeState(
            session_id=data.get("session_id"),
            seq=data.get("seq"),
            resume_url=data.get("resume_url"),
            bot_id=data.get("bot_id"),
        )
    except (ValueError, AttributeError):
        return ResumeState()


async def save(store: Store, state: ResumeState) -> None:
    if state.resumable:
        await store.put(KEY, json.dumps(asdict(state)), SESSION_TTL)
    else:
        await store.delete(KEY)
