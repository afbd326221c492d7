"""Fake OpenAI Chat Completions API speaking the real wire format.

Use with the real client::

    async with FakeOpenAI(api_key="sk-test") as fake:
        fake.script(lambda req: tool_call_reply("lookup", {"q": "x"}))
        client = AsyncOpenAI(api_key="sk-test", base_url=f"{fake.base_url}/v1", max_retries=0)
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=[...])

The handler receives the decoded JSON request body (``model``, ``messages``, ``tools`` ...) and
returns a :class:`ModelReply` (or a complete ``chat.completion`` dict). The default handler
answers ``"echo: <last user message content>"``.

``stream: true`` answers Server-Sent Events in the real format (followed: OpenAI's chat streaming reference,
https://platform.openai.com/docs/api-reference/chat-streaming): a ``chat.completion.chunk`` per ``data:``
line (the first with ``delta.role``, then the content a word at a time, tool calls as an opening fragment with
``id``/``name`` and then pieces of ``arguments``, then one with ``finish_reason``), with
``stream_options.include_usage`` a last chunk with no choices and the usage, then ``data: [DONE]``.
``fake.stream_delay`` (seconds, also ``POST /_config {"stream_delay": 0.02}``) spaces the chunks.

Run standalone: ``python -m tests.fakes.openai_api --port 0 --api-key sk-test`` prints
``READY http://127.0.0.1:PORT`` (hand ``<that>/v1`` to ``AsyncOpenAI``). A test in another process
scripts it with ``POST /_script`` ``{"replies": [{"tool_call": {"name": "f", "arguments": {...},
"id": "call_1"}}, {"content": "done"}]}`` (queued in order, then echo), e.g. via
``FakeProcess.post_control("/_script", {...})``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, json_response, run_cli

__all__ = [
    "FakeOpenAI",
    "Handler",
    "ModelReply",
    "echo_handler",
    "text_reply",
    "tool_call_reply",
]

DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class ModelReply:
    """What the fake model answers: text content and/or tool calls."""

    content: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str | None = None  # derived from tool_calls when None
    usage: dict[str, int] | None = None
    extra_message: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "refusal": None,
            "annotations": [],
        }
        if self.tool_calls:
            message["tool_calls"] = [dict(tc) for tc in self.tool_calls]
        message.update(self.extra_message)
        return message

    def to_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        finish = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        prompt_tokens = _count_tokens(json.dumps(request.get("messages", [])))
        completion_tokens = _count_tokens(self.content or "") + _count_tokens(
            json.dumps(list(self.tool_calls)) if self.tool_calls else ""
        )
        usage = self.usage or {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {
            "id": f"chatcmpl-fake{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model") or DEFAULT_MODEL),
            "choices": [{"index": 0, "message": self.message(), "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }


Handler = Callable[[dict[str, Any]], ModelReply | dict[str, Any]]


def text_reply(content: str) -> ModelReply:
    return ModelReply(content=content)


def tool_call_reply(
    name: str, arguments: dict[str, Any], call_id: str | None = None, content: str | None = None
) -> ModelReply:
    """A reply that calls one function tool (``arguments`` is JSON-encoded as OpenAI does)."""
    return ModelReply(
        content=content,
        tool_calls=(
            {
                "id": call_id or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            },
        ),
    )


def echo_handler(request: dict[str, Any]) -> ModelReply:
    """Default: ``"echo: <content of the last user message>"``."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_reply(f"echo: {_text_of(message.get('content'))}")
    return text_reply("echo: ")


class FakeOpenAI(FakeServer):
    """Fake ``https://api.openai.com`` (``/v1/chat/completions`` and ``/v1/models``)."""

    name = "FakeOpenAI"

    def __init__(
        self,
        api_key: str = "sk-test",
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = DEFAULT_MODEL,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.model = model
        self._handler: Handler = echo_handler
        self._request_ids = itertools.count(1)
        #: Seconds between two chunks of a streamed answer.
        self.stream_delay = 0.0
        #: A whole (not streamed) answer also takes ``stream_delay`` per chunk it would have streamed, as a
        #: real model takes as long to write an answer whether it streams it or not.
        self.pace_whole = False

    def script(self, handler: Handler) -> None:
        """Answer every following completion request with ``handler(request_body)``."""
        self._handler = handler

    def script_replies(self, *replies: ModelReply, then: Handler | None = None) -> None:
        """Answer the next requests with ``replies`` in order, then with ``then`` (default echo)."""
        queue = list(replies)
        after = then or echo_handler

        def handler(request: dict[str, Any]) -> ModelReply | dict[str, Any]:
            return queue.pop(0) if queue else after(request)

        self._handler = handler

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of every chat completion request (including rejected ones)."""
        return [c.args for c in self.calls_for("chat.completions")]

    # ------------------------------------------------------------------ wire format
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        app.router.add_post("/_script", self._post_script)
        app.router.add_post("/_config", self._post_config)

    async def _post_config(self, request: web.Request) -> web.StreamResponse:
        """Process mode: ``{"stream_delay": 0.02, "pace_whole": true, "answer": "always this"}``."""
        try:
            spec = await request.json()
            self.stream_delay = float(spec.get("stream_delay", self.stream_delay))
            self.pace_whole = bool(spec.get("pace_whole", self.pace_whole))
            if "answer" in spec:
                answer = str(spec["answer"])
                self.script(lambda req: text_reply(answer))
        except (ValueError, TypeError, AttributeError) as exc:
            return json_response({"ok": False, "error": repr(exc)}, status=400)
        return json_response({"ok": True})

    async def _post_script(self, request: web.Request) -> web.StreamResponse:
        """Process mode: ``{"replies": [{"content": "hi"}, {"tool_call": {"name": "f",
        "arguments": {...}, "id": "call_1"}}]}`` queues replies, then echo."""
        try:
            spec = await request.json()
            replies = [_reply_from_json(r) for r in spec.get("replies", [])]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return json_response({"ok": False, "error": repr(exc)}, status=400)
        self.script_replies(*replies)
        return json_response({"ok": True, "queued": len(replies)})

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_fake{next(self._request_ids)}"}

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        return _error(
            429,
            f"Rate limit reached for {self.model}. Please try again in {retry_after}s.",
            "requests",
            "rate_limit_exceeded",
            headers={"Retry-After": str(retry_after), **self._headers()},
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return _error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            headers=self._headers(),
        )

    def _check_auth(self, request: web.Request) -> web.StreamResponse | None:
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.api_key}":
            return None
        if not auth:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: dict[str, Any] = body if isinstance(body, dict) else {"_raw": await request.text()}

        def respond() -> web.StreamResponse:
            if not isinstance(body, dict):
                return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
            if not body.get("model"):
                return _error(400, "you must provide a model parameter", "invalid_request_error", None, param="model")
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                return _error(
                    400,
                    "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                    "invalid_request_error",
                    "empty_array",
                    param="messages",
                )
            reply = self._handler(body)
            completion = reply.to_completion(body) if isinstance(reply, ModelReply) else reply
            if body.get("stream") is True:
                return self._stream(request, completion, bool((body.get("stream_options") or {}).get("include_usage")))
            if self.pace_whole and self.stream_delay > 0:
                return self._whole_after(completion, len(stream_chunks(completion, False)) - 1)
            return json_response(completion, headers=self._headers())

        return await self.handle(
            request, "chat.completions", args, respond, check_auth=lambda: self._check_auth(request)
        )

    async def _stream(
        self, request: web.Request, completion: dict[str, Any], include_usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", **self._headers()})
        await response.prepare(request)
        for i, chunk in enumerate(stream_chunks(completion, include_usage)):
            if i and self.stream_delay > 0:
                await asyncio.sleep(self.stream_delay)
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _whole_after(self, completion: dict[str, Any], chunks: int) -> web.StreamResponse:
        await asyncio.sleep(self.stream_delay * chunks)
        return json_response(completion, headers=self._headers())

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(
            request,
            "models.list",
            {},
            lambda: json_response({"object": "list", "data": [self._model_object(self.model)]}),
            check_auth=lambda: self._check_auth(request),
        )

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]

        def respond() -> web.StreamResponse:
            if model != self.model:
                return _error(
                    404,
                    f"The model '{model}' does not exist",
                    "invalid_request_error",
                    "model_not_found",
                    param="model",
                )
            return json_response(self._model_object(model))

        return await self.handle(
            request,
            "models.retrieve",
            {"model": model},
            respond,
            check_auth=lambda: self._check_auth(request),
        )


def stream_chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A ``chat.completion`` as the ``chat.completion.chunk`` objects a streaming server sends for it."""
    choice = completion["choices"][0]
    message = choice["message"]
    head = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint") if k in completion}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": word}) for word in re.findall(r"\s*\S+|\s+$", message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        opening = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [opening]}))
        args = fn.get("arguments") or ""
        for start in range(0, len(args), 8):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args[start : start + 8]}}]}))
    chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion.get("usage")})
    return chunks


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_response(body, status=status, headers=headers)


def _reply_from_json(spec: dict[str, Any]) -> ModelReply:
    tool_call = spec.get("tool_call")
    if tool_call is not None:
        return tool_call_reply(
            str(tool_call["name"]),
            dict(tool_call.get("arguments") or {}),
            tool_call.get("id"),
            content=spec.get("content"),
        )
    return text_reply(str(spec["content"]))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):  # list of content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def main(argv: list[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default="sk-test")
        parser.add_argument("--model", default=DEFAULT_MODEL)

    return run_cli(
        lambda ns: FakeOpenAI(api_key=ns.api_key, host=ns.host, port=ns.port, model=ns.model),
        configure,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
