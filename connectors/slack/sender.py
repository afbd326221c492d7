"""Slack Web API out, through slack_sdk's ``AsyncWebClient``.

``thread_ts`` is the thread root so replies land in the thread (or start one
under the message). slack_sdk's own retry handlers are turned off: it would
resend on a dropped connection, which can post twice; retries are ours.
https://api.slack.com/methods/chat.postMessage

The token is the workspace's (``ReplyAddress.bot`` is the team id) when the app is installed across
workspaces (``connectors/slack/tokens.py``), else the one ``SLACK_BOT_TOKEN``.

Every post carries its outbound message id in message ``metadata``, so that :meth:`SlackSender.find_sent` can
tell a reply that went out before its process died (connectors/slack/lookup.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.slack import lookup
from connectors.slack import status as surface
from connectors.slack.stream import SlackStream
from connectors.streaming import StreamIO, StreamState
from gateway.core.errors import RateLimited, SendError
from gateway.core.events import AMBIENT_ACTIONS, OutboundMessage


class TokenSource(Protocol):
    async def token_for(self, team: str) -> str:
        """The bot token for workspace ``team``; raises SendError when it has none."""
        ...


class SlackSender:
    platform = "slack"
    #: Status, prompts, titles and the end of a turn: connectors/slack/status.py.
    ambient = AMBIENT_ACTIONS

    def __init__(
        self,
        token: str | None,
        base_url: str = "https://slack.com/api/",
        timeout: int = 10,
        *,
        tokens: TokenSource | None = None,
        status_mode: surface.StatusMode = "assistant",
    ) -> None:
        self._status_mode: surface.StatusMode = status_mode
        self._token = token
        self._tokens = tokens
        self._base_url = base_url
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._web: AsyncWebClient | None = None

    @property
    def _client(self) -> AsyncWebClient:
        # One pooled session for every call: without it AsyncWebClient opens a new session (and TCP/TLS
        # connection) per API call. Created lazily because a session belongs to the running loop.
        if self._web is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
            self._web = AsyncWebClient(
                token=self._token,
                base_url=self._base_url,
                timeout=self._timeout,
                session=self._session,
                retry_handlers=[],
            )
        return self._web

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        to = message.to
        call = surface.call_for(self._status_mode, message) if message.action in AMBIENT_ACTIONS else None
        if message.action in AMBIENT_ACTIONS and call is None:
            return {"skipped": f"nothing to show for {message.action} here (GATEWAY_SLACK_STATUS)"}
        token = await self._tokens.token_for(to.bot) if self._tokens is not None else self._token
        try:
            if call is not None:
                method, args = call
                # slack_sdk 3.48 has a typed method for each (assistant_threads_setStatus, ...), named after it.
                await getattr(self._client, method.replace(".", "_"))(token=token, **args)
                return {"method": method}
            if message.action == "reply":
                kwargs: dict[str, Any] = {
                    "channel": to.channel,
                    "text": message.text,
                    "token": token,
                    "metadata": lookup.metadata_for(message.id),
                }
                if to.thread:
                    kwargs["thread_ts"] = to.thread
                if message.extra.get("blocks"):
                    kwargs["blocks"] = message.extra["blocks"]
                resp = await self._client.chat_postMessage(**kwargs)
                return {"ts": resp.get("ts"), "channel": resp.get("channel")}
            if message.action == "react":
                await self._client.reactions_add(
                    token=token,
                    channel=to.channel,
                    timestamp=message.target_message or to.message or "",
                    name=(message.emoji or "eyes").strip(":"),
                )
                return {}
            raise SendError(f"Slack does not support action {message.action!r}", platform="slack")
        except SlackApiError as exc:
            if exc.response.get("error") == "already_reacted":
                return {"already": True}
            raise _refused(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="slack", target="Slack") from exc

    async def find_sent(self, message: OutboundMessage) -> dict[str, Any] | None:
        """The reply Slack already shows for ``message`` (found by its metadata), else None; only replies are
        looked up (a reaction is refused twice by Slack, the rest is idempotent)."""
        if message.action != "reply":
            return None
        token = await self._tokens.token_for(message.to.bot) if self._tokens is not None else self._token
        try:
            return await lookup.find_post(self._client, token, message)
        except SlackApiError as exc:
            raise _refused(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="slack", target="Slack") from exc

    async def stream(self, message: OutboundMessage, state: StreamState, io: StreamIO) -> None:
        """A stream snapshot: native streaming in the thread, else post-and-edit (connectors/slack/stream.py)."""
        to = message.to
        token = await self._tokens.token_for(to.bot) if self._tokens is not None else self._token
        try:
            await SlackStream(self._client, token, to, state, io, message.id).show(message.text, message.final)
        except SlackApiError as exc:
            raise _refused(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, platform="slack", target="Slack") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._web = None


def _refused(exc: SlackApiError) -> SendError:
    if exc.response.status_code == 429:
        retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
        return RateLimited("Slack answered 429", platform="slack", retry_after=retry_after)
    return SendError(f"Slack refused: {exc.response.get('error')}", platform="slack")
