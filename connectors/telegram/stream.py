"""A streamed answer in a Telegram chat: ``sendMessageDraft`` then ``sendMessage``, else ``sendMessage`` then
``editMessageText``.

Followed: Bot API 10.0 as python-telegram-bot 22.8 types it (``Bot.send_message_draft``, added in 22.6, open to
all bots since 22.7): a draft goes to a *private* chat (``chat_id``, optional ``message_thread_id``), has a
non-zero ``draft_id`` (changes of one draft are animated), carries the whole text so far (at most 4,096
characters), and is an ephemeral preview of about 30 seconds: the answer persists only when it is sent with
``sendMessage``. https://core.telegram.org/bots/api#sendmessagedraft

So in a private chat a part is a draft (nothing to remember: a draft is not a message, and sending it again
just replaces it) until it is complete, then one ``sendMessage`` whose ``message_id`` is saved at once. In
groups, or when the server refuses drafts (a 400, or a 404 from a Bot API server without the method), the
stream posts and then edits (``editMessageText``; "message is not modified" is not an error). A long answer is
split into messages of at most :data:`LIMIT` characters.
"""

from __future__ import annotations

import zlib

from telegram import Bot
from telegram.error import BadRequest, InvalidToken

from connectors.streaming import Part, StreamIO, StreamState, split, visible
from gateway.core.events import ReplyAddress

#: Characters per message (``MessageLimit.MAX_TEXT_LENGTH``).
LIMIT = 4096


def draft_id(stream_id: str, part: int) -> int:
    """A stable, non-zero 31-bit id for part ``part`` of a stream (the same in every process)."""
    return (zlib.crc32(f"{stream_id}:{part}".encode()) & 0x7FFFFFFF) or 1


def not_modified(exc: BadRequest) -> bool:
    return "not modified" in str(exc).lower()


class TelegramStream:
    def __init__(self, bot: Bot, to: ReplyAddress, stream_id: str, state: StreamState, io: StreamIO) -> None:
        self._bot = bot
        self._to = to
        self._id = stream_id
        self._state = state
        self._io = io
        self._chat: int | str = int(to.channel) if to.channel.lstrip("-").isdigit() else to.channel
        self._thread = int(to.thread) if to.thread else None

    @property
    def _drafts(self) -> bool:
        return self._state.mode != "edit" and isinstance(self._chat, int) and self._chat > 0

    async def show(self, text: str, final: bool) -> None:
        pieces = split(text, LIMIT)
        for i, piece in enumerate(pieces):
            closing = final or i < len(pieces) - 1
            if not visible(piece):
                continue
            if i < len(self._state.parts):
                part = self._state.parts[i]
                if not (part.closed and part.text == piece):
                    await self._grow(i, part, piece, closing)
            else:
                part = Part()
                self._state.parts.append(part)
                await self._grow(i, part, piece, closing)

    async def _grow(self, i: int, part: Part, piece: str, closing: bool) -> None:
        if not closing and part.text.startswith(piece):
            return  # a retried turn catching up with what an earlier attempt showed: nothing to take back
        if part.ref:  # a message: edit it
            if part.text != piece:
                await self._edit(part, piece)
            part.closed = closing
            return
        if not closing and self._drafts and await self._draft(i, piece):
            part.text, part.native = piece, True
            return
        await self._send(part, piece, closing)

    async def _draft(self, i: int, piece: str) -> bool:
        """Show ``piece`` as the part's draft; False when drafts are refused here (then for good)."""
        await self._io.pace()
        try:
            await self._bot.send_message_draft(
                chat_id=int(self._chat), draft_id=draft_id(self._id, i), text=piece, message_thread_id=self._thread
            )
        except (BadRequest, InvalidToken):
            self._state.mode = "edit"
            return False
        self._state.mode = "native"
        return True

    async def _send(self, part: Part, piece: str, closing: bool) -> None:
        await self._io.pace()
        sent = await self._bot.send_message(chat_id=self._chat, text=piece, message_thread_id=self._thread)
        part.ref, part.text, part.native, part.closed = str(sent.message_id), piece, False, closing
        if not self._state.mode:
            self._state.mode = "edit"
        await self._io.save()  # the receipt, before anything else goes out

    async def _edit(self, part: Part, piece: str) -> None:
        await self._io.pace()
        try:
            await self._bot.edit_message_text(chat_id=self._chat, message_id=int(part.ref), text=piece)
        except BadRequest as exc:
            if not not_modified(exc):
                raise
        part.text = piece
