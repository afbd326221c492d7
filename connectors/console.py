"""A stand-in sender for ``gateway dev`` when a platform has no credentials.

It prints what would have been sent, so a newcomer sees the whole path work
(``gateway send slack "hi"``) before creating any Slack or Telegram app.
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.core.events import OutboundMessage

log = structlog.get_logger("reply")


class ConsoleSender:
    def __init__(self, platform: str) -> None:
        self.platform = platform

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        to = message.to
        log.warning(
            "reply_not_sent_no_credentials",
            platform=self.platform,
            action=message.action,
            channel=to.channel,
            thread=to.thread,
            text=message.text,
            emoji=message.emoji,
        )
        return {"console": True}

    async def close(self) -> None:
        return None
