"""Fake Anthropic Messages API speaking the real wire format (``anthropic-version`` 2023-06-01 and 2026-10-21).

Use with the real client::

    async with FakeAnthropic(api_key="sk-ant-test") as fake:
        fake.script(lambda req: tool_use_reply("lookup", {"q": "x"}))
        client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.base_url, max_retries=0)
        message = await client.messages.create(model="claude-x", max_tokens=256, messages=[...])

``POST /v1/messages`` needs the key, as ``x-api-key`` or (as the ``anthropic`` client 2.x sends it)
``Authorization: Bearer`` (401 ``authentication_error``), and ``anthropic-version``
(400). It refuses what the real API refuses, with Anthropic's error body (``{"type": "error", "error":
{"type", "message"}, "request_id"}``) and a ``request-id`` header: no ``model``, no or a non-positive
``max_tokens``, empty ``messages``, a first message that is not the user's, two messages of one role in a
row, an empty text block, a ``tool_result`` whose ``tool_use_id`` matches no ``tool_use`` of the assistant
message just before it, a ``tool_use`` not answered by a ``tool_result`` in the next message, a tool without
``name`` or ``input_schema``, and (at 2026-10-21) ``temperature``/``top_p``/``top_k``. Injected failures
are Anthropic's: 429 ``rate_limit_error`` with ``retry-after``, 529 ``overloaded_error``, 500 ``api_error``.

``"stream": true`` answers with Server-Sent Events: ``message_start``, per block ``content_block_start``,
``content_block_delta`` (``text_delta`` in a few pieces, ``input_json_delta`` in fragments),
``content_block_stop``, then ``message_delta`` (``stop_reason``, output ``usage``) and ``message_stop``;
:meth:`FakeAnthropic.overload_next_stream` breaks one off with an ``event: error`` (``overloaded_error``).

The handler receives the decoded request body and returns an :class:`AnthropicReply`; the default answers
``"echo: <last user text>"``. Usage counts are deterministic: input = characters of the request's messages
and system / 4, output = characters of the answer / 4 (at least 1 each).
"""

from __future__ import annotations

import argparse
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, json_response, run_cli

__all__ = ["AnthropicReply", "FakeAnthropic", "echo_handler", "text_reply", "tool_use_reply"]

VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
REMOVED_IN_2026 = ("temperature", "top_p", "top_k")
BLOCK_TYPES = ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking")


@dataclass(frozen=True)
class AnthropicReply:
    """What the fake model answers: text, and/or tool_use blocks ``(id, name, input)``."""

    text: str | None = None
    tool_uses: tuple[tuple[str, str, dict[str, Any]], ...] = ()

    def blocks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"type": "text", "text": self.text}] if self.text else []
        out += [{"type": "tool_use", "id": i, "name": n, "input": inp} for i, n, inp in self.tool_uses]
        return out

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_uses else "end_turn"


Handler = Callable[[dict[str, Any]], AnthropicReply]


def text_reply(text: str) -> AnthropicReply:
    return AnthropicReply(text=text)


def tool_use_reply(name: str, arguments: dict[str, Any], tool_id: str | None = None) -> AnthropicReply:
    return AnthropicReply(tool_uses=((tool_id or f"toolu_{uuid.uuid4().hex[:24]}", name, arguments),))


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def echo_handler(request: dict[str, Any]) -> AnthropicReply:
    return text_reply(f"echo: {last_user_text(request)}")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class Refused(Exception):
    def __init__(self, message: str, status: int = 400, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.type = type_


def _blocks_of(message: dict[str, Any], i: int) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        if not content:
            raise Refused(f"messages.{i}: all messages must have non-empty content")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise Refused(f"messages.{i}: all messages must have non-empty content")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            raise Refused(f"messages.{i}.content.{j}: Input tag does not match any of the expected tags")
        if block["type"] == "text" and not block.get("text"):
            raise Refused(f"messages.{i}.content.{j}: text content blocks must be non-empty")
    return content


def validate(body: dict[str, Any], version: str) -> None:
    """Raise :class:`Refused` for what the real API refuses."""
    if not body.get("model"):
        raise Refused("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise Refused("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise Refused("max_tokens: Input should be greater than or equal to 1")
    if version == "2026-10-21":
        for name in REMOVED_IN_2026:
            if name in body:
                raise Refused(f"{name}: Extra inputs are not permitted")
    for k, t in enumerate(body.get("tools") or []):
        if not isinstance(t, dict) or not t.get("name") or not isinstance(t.get("input_schema"), dict):
            raise Refused(f"tools.{k}: name and input_schema are required")
        if t["input_schema"].get("type") != "object":
            raise Refused(f"tools.{k}.custom.input_schema.type: Input should be 'object'")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Refused("messages: at least one message is required")
    if messages[0].get("role") != "user":
        raise Refused('messages: first message must use the "user" role')
    open_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise Refused(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i > 0 and messages[i - 1].get("role") == role:
            raise Refused('messages: roles must alternate between "user" and "assistant"')
        blocks = _blocks_of(message, i)
        results = {b.get("tool_use_id") for b in blocks if b["type"] == "tool_result"}
        if role == "user":
            stray = results - open_uses
            if stray:
                raise Refused(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {sorted(stray)[0]}."
                    " Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
            missing = open_uses - results
            if missing:
                raise Refused(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{sorted(missing)[0]}. Each `tool_use` block must have a corresponding `tool_result` block in "
                    "the next message."
                )
            open_uses = set()
        else:
            if results:
                raise Refused(f"messages.{i}: tool_result blocks are only allowed in user messages")
            open_uses = {str(b.get("id")) for b in blocks if b["type"] == "tool_use"}
    if open_uses:
        raise Refused("messages: the last `tool_use` has no `tool_result` after it")


class FakeAnthropic(FakeServer):
    """Fake ``https://api.anthropic.com`` (``POST /v1/messages``)."""

    name = "FakeAnthropic"

    def __init__(self, api_key: str = "sk-ant-test", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self._handler: Handler = echo_handler
        self._ids = itertools.count(1)
        self._break_streams = 0

    def script(self, handler: Handler) -> None:
        self._handler = handler

    def overload_next_stream(self, n: int = 1) -> None:
        """The next ``n`` streams answer 200, send ``message_start`` and the first text delta, then an
        ``event: error`` of type ``overloaded_error`` (as the real API does when it is overloaded mid-stream)."""
        self._break_streams += n

    def script_replies(self, *replies: AnthropicReply, then: Handler | None = None) -> None:
        queue = list(replies)
        after = then or echo_handler
        self._handler = lambda req: queue.pop(0) if queue else after(req)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of every messages request (rejected ones too)."""
        return [c.args for c in self.calls_for("messages")]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def _request_id(self) -> str:
        return f"req_fake{next(self._ids):08d}"

    def _error(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        rid = self._request_id()
        body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid}
        return json_response(body, status=status, headers={"request-id": rid, **(headers or {})})

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        return self._error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
            headers={"retry-after": str(retry_after)},
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        if status == 529:
            return self._error(529, "overloaded_error", "Overloaded")
        return self._error(status, "api_error", "Internal server error")

    def _check_auth(self, request: web.Request) -> web.StreamResponse | None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("Authorization", "")
        if key is None and bearer.startswith("Bearer "):
            key = bearer.removeprefix("Bearer ")  # how the anthropic client >= 2 sends an API key
        if key is None:
            return self._error(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            return self._error(401, "authentication_error", "invalid x-api-key")
        version = request.headers.get("anthropic-version")
        if version is None:
            return self._error(400, "invalid_request_error", "anthropic-version: header is required")
        if version not in VERSIONS:
            return self._error(400, "invalid_request_error", f"anthropic-version: unknown version {version!r}")
        return None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: dict[str, Any] = body if isinstance(body, dict) else {"_raw": await request.text()}
        version = request.headers.get("anthropic-version", "")

        async def respond() -> web.StreamResponse:
            if not isinstance(body, dict):
                return self._error(400, "invalid_request_error", "The request body is not valid JSON.")
            try:
                validate(body, version)
            except Refused as exc:
                return self._error(exc.status, exc.type, str(exc))
            reply = self._handler(body)
            prompt = json.dumps(body["messages"]) + json.dumps(body.get("system", ""))
            usage = {
                "input_tokens": _tokens(prompt),
                "output_tokens": _tokens(json.dumps(reply.blocks())),
            }
            message = {
                "id": f"msg_fake{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": reply.blocks(),
                "stop_reason": reply.stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            if body.get("stream"):
                return await self._stream(request, message)
            return json_response(message, headers={"request-id": self._request_id()})

        return await self.handle(request, "messages", args, respond, check_auth=lambda: self._check_auth(request))

    async def _stream(self, request: web.Request, message: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "request-id": self._request_id()}
        )
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode())

        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        await send("message_start", {"message": start})
        await send("ping", {})
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                await send("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                text = block["text"]
                for piece in (text[i : i + 5] for i in range(0, len(text), 5)):
                    await send("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
                    if self._break_streams > 0:
                        self._break_streams -= 1
                        await send("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                        await response.write_eof()
                        return response
            else:
                opened = {**block, "input": {}}
                await send("content_block_start", {"index": index, "content_block": opened})
                raw = json.dumps(block["input"])
                for piece in (raw[i : i + 7] for i in range(0, len(raw), 7)):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    await send("content_block_delta", {"index": index, "delta": delta})
            await send("content_block_stop", {"index": index})
        await send(
            "message_delta",
            {
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await send("message_stop", {})
        await response.write_eof()
        return response


def main(argv: list[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default="sk-ant-test")

    return run_cli(lambda ns: FakeAnthropic(api_key=ns.api_key, host=ns.host, port=ns.port), configure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
