"""Telegram Bot API out, through python-telegram-bot's ``Bot``.

``message_thread_id`` is sent only for real forum topics (see parse.py).
https://core.telegram.org/bots/api#sendmessage
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from connectors.streaming import StreamIO, StreamState
from connectors.telegram.stream import TelegramStream
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import OutboundMessage

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    platform = "telegram"

    def __init__(self, tokens: dict[str, str], api_url: str = "https://api.telegram.org") -> None:
        """``tokens`` maps each bot name to its token."""
        self._bots = {
            name: Bot(
                token,
                base_url=f"{api_url}/bot",
                base_file_url=f"{api_url}/file/bot",
                request=HTTPXRequest(connection_pool_size=64, read_timeout=10, connect_timeout=5),
            )
            for name, token in tokens.items()
        }
        self._ready: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in tokens}
        self._initialized: set[str] = set()

    async def _bot(self, name: str) -> Bot:
        bot = self._bots.get(name)
        if bot is None:
            raise SendError(f"no Telegram bot named {name!r} has a token", platform="telegram")
        if name not in self._initialized:
            async with self._ready[name]:
                if name not in self._initialized:
                    await bot.initialize()
                    self._initialized.add(name)
        return bot

    #: A status shows as "typing…"; prompts, titles and the end of a turn have nothing to show.
    ambient = frozenset({"typing", "status"})

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        to = message.to
        try:
            bot = await self._bot(to.bot)
            thread = int(to.thread) if to.thread else None
            if message.action == "reply":
                sent = await bot.send_message(chat_id=to.channel, text=message.text, message_thread_id=thread)
                return {"message_id": sent.message_id}
            if message.action in ("typing", "status"):  # Telegram shows no status text: "typing…" says it
                await bot.send_chat_action(chat_id=to.channel, action="typing", message_thread_id=thread)
                return {}
            if message.action == "react":
                target = message.target_message or to.message
                if target is None:
                    raise SendError("nothing to react to", platform="telegram")
                await bot.set_message_reaction(
                    chat_id=to.channel, message_id=int(target), reaction=message.emoji or "👀"
                )
                return {}
            raise SendError(f"Telegram does not support action {message.action!r}", platform="telegram")
        except TelegramError as exc:
            raise _refused(exc) from exc

    async def stream(self, message: OutboundMessage, state: StreamState, io: StreamIO) -> None:
        """A stream snapshot: drafts in private chats, else post-and-edit (connectors/telegram/stream.py)."""
        try:
            bot = await self._bot(message.to.bot)
            await TelegramStream(bot, message.to, message.id, state, io).show(message.text, message.final)
        except TelegramError as exc:
            raise _refused(exc) from exc

    async def close(self) -> None:
        for name in list(self._initialized):
            await self._bots[name].shutdown()
        self._initialized.clear()


def _refused(exc: TelegramError) -> SendError:
    if isinstance(exc, RetryAfter):
        return RateLimited("Telegram answered 429", platform="telegram", retry_after=_seconds(exc.retry_after))
    if isinstance(exc, TimedOut | NetworkError):
        retryable = isinstance(exc.__cause__, _NOT_SENT)
        return SendError(f"Telegram call failed: {exc}", platform="telegram", retryable=retryable)
    return SendError(f"Telegram refused: {exc}", platform="telegram")
