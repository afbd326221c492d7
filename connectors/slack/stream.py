"""A streamed answer in a Slack thread: ``chat.startStream`` / ``appendStream`` / ``stopStream``, else
``chat.postMessage`` then ``chat.update``.

Followed: the docs.slack.dev reference of chat.startStream, chat.appendStream and chat.stopStream, as
slack_sdk 3.48's ``AsyncWebClient.chat_startStream`` etc. send them (JSON bodies). A streamed message is a
reply (``thread_ts`` required); ``recipient_team_id`` and ``recipient_user_id`` are required in channels;
``markdown_text`` is at most 12,000 characters a call; a stream lives about five minutes, after which
``appendStream``/``stopStream`` answer ``message_not_in_streaming_state`` (``stopped_by_user`` when the user
stopped it). slack_sdk's ``chat_stream`` helper keeps its state in memory, so it cannot be continued by
another process: the three methods are called directly, with the state in the store
(connectors/streaming.py).

When the app or workspace cannot stream (``unknown_method``, ``not_allowed``...), or the answer is not in a
thread, the stream falls back to post-and-edit for good (``mode = "edit"`` is saved). A long answer is split
into messages of at most :data:`LIMIT` characters.

Calls that are not idempotent are announced in the store first: a part is saved (without its ``ts``) before
the call that creates its message, and found that way it is looked up in the thread (``conversations.replies``)
before a second one is made (a ``chat.postMessage`` part carries the stream's outbound id and its part number in
message metadata, connectors/slack/lookup.py, and is found by it; a ``chat.startStream`` part by its text); a
part is saved as ``unsure`` before an ``appendStream``, and found unsure (its
process died during the call) it is stopped and rewritten whole with ``chat.update``.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack import lookup
from connectors.streaming import Part, StreamIO, StreamState, split, visible
from gateway.core.events import ReplyAddress

#: Characters per message: Slack asks to keep a message's text under about 4,000 (chat.update truncates more).
LIMIT = 4000
#: Answers of chat.startStream that mean "this app, workspace or conversation cannot stream here".
NO_STREAMING = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "method_not_supported_for_channel_type",
        "channel_type_not_supported",
        "missing_scope",
        "feature_not_enabled",
        "invalid_arguments",
    }
)
#: Answers of appendStream/stopStream for a stream that has ended (expired, or stopped by the user).
STREAM_OVER = frozenset({"message_not_in_streaming_state", "stopped_by_user"})


def error_of(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "")


class SlackStream:
    def __init__(
        self,
        client: AsyncWebClient,
        token: str | None,
        to: ReplyAddress,
        state: StreamState,
        io: StreamIO,
        message_id: str = "",
    ):
        self._message_id = message_id
        self._client = client
        self._token = token
        self._to = to
        self._state = state
        self._io = io

    async def show(self, text: str, final: bool) -> None:
        """Bring the thread up to ``text``."""
        pieces = split(text, LIMIT)
        for i, piece in enumerate(pieces):
            closing = final or i < len(pieces) - 1
            if not visible(piece):
                continue
            if i == len(self._state.parts):
                part = Part(text=piece, unsure=True, native=self._state.mode != "edit" and bool(self._to.thread))
                self._state.parts.append(part)
                await self._io.save()  # the intent, so that a crash during the call is found out (_adopt)
                await self._create(part, piece, closing)
                continue
            part = self._state.parts[i]
            if not part.ref and not await self._adopt(part):
                await self._create(part, piece, closing)
            elif not (part.closed and part.text == piece and not part.unsure):
                await self._grow(part, piece, closing)

    async def _create(self, part: Part, piece: str, closing: bool) -> None:
        to = self._to
        if part.native:
            await self._io.pace()
            try:
                resp = await self._client.chat_startStream(
                    token=self._token,
                    channel=to.channel,
                    thread_ts=to.thread or "",
                    markdown_text=piece,
                    recipient_team_id=to.bot,
                    recipient_user_id=to.user,
                )
            except SlackApiError as exc:
                if error_of(exc) not in NO_STREAMING:
                    raise
                part.native = False
                self._state.mode = "edit"
                await self._io.save()
            else:
                part.ref, part.text, part.unsure = str(resp.get("ts")), piece, False
                self._state.mode = "native"
                await self._io.save()  # the receipt, before anything else goes out
                if closing:
                    await self._stop(part)
                return
        self._state.mode = "edit"
        await self._io.pace()
        resp = await self._client.chat_postMessage(
            token=self._token, channel=to.channel, text=piece, thread_ts=to.thread, metadata=self._metadata(part)
        )
        part.ref, part.text, part.unsure, part.closed = str(resp.get("ts")), piece, False, closing
        await self._io.save()

    def _metadata(self, part: Part) -> dict[str, object] | None:
        if not self._message_id:
            return None
        return lookup.metadata_for(self._message_id, part=self._index(part))

    def _index(self, part: Part) -> int:
        return next(i for i, p in enumerate(self._state.parts) if p is part)

    async def _adopt(self, part: Part) -> bool:
        """A part whose creation was under way when its process died: find the message it made, if it did.

        The thread's bot messages since the inbound one (``conversations.replies``, which needs the history
        scope of the conversation type) are searched for the one whose metadata names this stream and part, else
        one that shows exactly the intended text and belongs to no other part. Found: it is this part's, and the
        stream goes on appending to it (or rewrites it with
        ``chat.update`` if its stream has ended meanwhile). Not found, or the replies
        cannot be read: it is made now (without the scope, a crash in that moment can show the start twice)."""
        to = self._to
        if not to.thread:
            return False
        try:
            resp = await self._client.conversations_replies(
                token=self._token,
                channel=to.channel,
                ts=to.thread,
                oldest=to.message or to.thread,
                limit=200,
                include_all_metadata=True,
            )
        except SlackApiError:
            return False
        taken = {p.ref for p in self._state.parts if p.ref}
        shown = [m for m in resp.get("messages") or [] if m.get("bot_id") and str(m.get("ts")) not in taken]
        index = self._index(part)
        ours = [m for m in shown if self._message_id and lookup.carries(m, self._message_id, part=index)]
        others = [m for m in shown if not (self._message_id and lookup.carries(m, self._message_id))]
        for m in ours or [m for m in others if m.get("text") == part.text]:
            part.ref, part.unsure = str(m["ts"]), False
            await self._io.save()
            return True
        return False

    async def _grow(self, part: Part, piece: str, closing: bool) -> None:
        if not closing and part.text.startswith(piece) and not part.unsure:
            return  # a retried turn catching up with what an earlier attempt showed: nothing to take back
        if part.native and not part.unsure and piece.startswith(part.text):
            delta = piece[len(part.text) :]
            if not delta:
                if closing:
                    await self._stop(part)
                return
            if await self._append(part, piece, delta, stop=closing):
                return
        if part.native:  # diverged (a retried turn wrote other text), unsure, or its stream ended
            await self._stop(part)
        if part.unsure or part.text != piece:
            await self._io.pace()
            await self._client.chat_update(token=self._token, channel=self._to.channel, ts=part.ref, text=piece)
            part.text, part.unsure = piece, False
        part.closed = closing

    async def _append(self, part: Part, piece: str, delta: str, *, stop: bool) -> bool:
        """Append ``delta`` (with ``stop``: in the ``chat.stopStream`` that ends the stream, one call for both);
        False when the stream has ended (the caller rewrites the message)."""
        part.text, part.unsure = piece, True
        await self._io.save()
        await self._io.pace()
        channel, ts = self._to.channel, part.ref
        try:
            if stop:
                await self._client.chat_stopStream(token=self._token, channel=channel, ts=ts, markdown_text=delta)
            else:
                await self._client.chat_appendStream(token=self._token, channel=channel, ts=ts, markdown_text=delta)
        except SlackApiError as exc:
            if error_of(exc) not in STREAM_OVER:
                raise
            part.native = False
            return False
        part.unsure = False
        if stop:
            part.native, part.closed = False, True
        return True

    async def _stop(self, part: Part) -> None:
        await self._io.pace()
        try:
            await self._client.chat_stopStream(token=self._token, channel=self._to.channel, ts=part.ref)
        except SlackApiError as exc:
            if error_of(exc) not in STREAM_OVER:
                raise
        part.native, part.closed = False, True
