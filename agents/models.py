"""Chat models behind one small interface; OpenAI-compatible servers first.

The official ``openai`` client pointed at ``OPENAI_BASE_URL`` speaks to
OpenAI, Ollama, vLLM, LM Studio and OpenRouter alike. The client itself does
not retry (``max_retries=0``): a failure raises :class:`ModelError` and the
turn fails as a whole, which the dispatcher retries ``GATEWAY_TURN_ATTEMPTS``
times in all, waiting at least the server's ``Retry-After`` on a 429, then
dead-letters: one retry budget per event, never the client's retries
multiplied by the dispatcher's, and never a half-answer.

Streamed turns are read by agents/sse.py (aiohttp + orjson, same request, items and errors) unless
``GATEWAY_MODEL_CLIENT=sdk``: the SDK's per-chunk objects cost more CPU than a busy consumer has
(docs/benchmarks.md, "Streamed first text").
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import openai

from agents.usage import Usage

if TYPE_CHECKING:
    from agents.sse import FastStream

ModelClient = Literal["fast", "sdk"]
#: Which client streams a turn: ``fast`` (agents/sse.py: aiohttp + orjson) or ``sdk`` (the ``openai`` SDK).
MODEL_CLIENT_ENV = "GATEWAY_MODEL_CLIENT"


def model_client_from_env() -> ModelClient:
    value = os.environ.get(MODEL_CLIENT_ENV, "").strip().lower() or "fast"
    if value not in ("fast", "sdk"):
        raise ValueError(f"{MODEL_CLIENT_ENV} must be fast or sdk, not {value!r}")
    return "sdk" if value == "sdk" else "fast"


class ModelError(Exception):
    """The model server could not give an answer.

    ``retry_after`` (seconds) is the server's ``Retry-After`` when it said how long to wait; the dispatcher
    waits at least that long before its next attempt. ``status`` is the HTTP status the server answered
    (None: no answer, a timeout or a broken connection). A fallback list tries its next model only when
    the failure is :attr:`transient` (5xx, 529 overloaded, timeout, unreachable), never on a 4xx.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500


def _retry_after(exc: openai.APIStatusError) -> float | None:
    return parse_retry_after(exc.response.headers.get("retry-after"))


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (None: absent, an HTTP date, or out of range)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date: rare from model servers; the dispatcher's own backoff applies
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelTurn:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: What this call cost, from the provider's usage fields (None when it reported none).
    usage: Usage | None = None

    def as_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


class ChatModel(Protocol):
    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn: ...


class StreamingModel(ChatModel, Protocol):
    """A model that can also stream: text deltas (``str``) as they come, then one :class:`ModelTurn`
    with the whole content, the tool calls and the usage."""

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AsyncIterator[str | ModelTurn]: ...


class OpenAIChat:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 0,
        client: openai.AsyncOpenAI | None = None,
        stream_client: ModelClient | None = None,
    ) -> None:
        """``stream_client``: who streams (None: ``GATEWAY_MODEL_CLIENT``, default ``fast``); with a ``client``
        of its own given, the SDK streams unless ``stream_client="fast"`` says otherwise."""
        self.model = model
        self._client = client or openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=max_retries
        )
        chosen = stream_client or ("sdk" if client is not None else model_client_from_env())
        self.stream_client: ModelClient = chosen
        self._timeout = timeout
        self._fast: FastStream | None = None

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        return kwargs

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        try:
            resp = await self._client.chat.completions.create(**self._request(messages, tools))
        except openai.APIError as exc:
            raise _model_error(exc) from exc
        if not resp.choices:
            raise ModelError("model server returned no choices")
        msg = resp.choices[0].message
        calls = [
            ToolCall(c.id, c.function.name, c.function.arguments or "{}")
            for c in (msg.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = resp.usage
        spent = Usage.from_dict(usage.model_dump()) if usage is not None else None
        return ModelTurn(content=msg.content, tool_calls=calls, usage=spent)

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        """``stream: true``: ``chat.completion.chunk`` events, text in ``choices[0].delta.content``; tool calls
        come as fragments keyed by ``index`` (the first with ``id`` and ``function.name``, then pieces of
        ``function.arguments``); ``stream_options.include_usage`` adds a last chunk with no choices and the
        usage. https://platform.openai.com/docs/api-reference/chat-streaming

        ``stream_client="fast"`` reads the same stream with agents/sse.py (same items, same errors)."""
        if self.stream_client == "fast":
            async for item in self._fast_stream().stream(self._request(messages, tools)):
                yield item
            return
        async for item in self._sdk_stream(messages, tools):
            yield item

    def _fast_stream(self) -> FastStream:
        if self._fast is None:
            from agents.sse import FastStream

            headers = {k: v for k, v in self._client.auth_headers.items() if v}
            if self._client.organization:
                headers["OpenAI-Organization"] = self._client.organization
            if self._client.project:
                headers["OpenAI-Project"] = self._client.project
            self._fast = FastStream(str(self._client.base_url), headers, timeout=self._timeout)
        return self._fast

    async def _sdk_stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        texts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        spent: Usage | None = None
        try:
            chunks = await self._client.chat.completions.create(
                **self._request(messages, tools), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in chunks:
                if chunk.usage is not None:
                    spent = Usage.from_dict(chunk.usage.model_dump())
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content:
                        texts.append(delta.content)
                        yield delta.content
                    for part in delta.tool_calls or []:
                        call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": []})
                        call["id"] = part.id or call["id"]
                        if part.function is not None:
                            call["name"] = part.function.name or call["name"]
                            call["arguments"].append(part.function.arguments or "")
        except openai.APIError as exc:
            raise _model_error(exc) from exc
        except httpx.HTTPError as exc:  # the connection broke in the middle of the stream
            raise ModelError(f"model stream broke off: {exc!r}") from exc
        tool_calls = [
            ToolCall(c["id"], c["name"], "".join(c["arguments"]) or "{}") for _, c in sorted(calls.items()) if c["name"]
        ]
        yield ModelTurn(content="".join(texts) or None, tool_calls=tool_calls, usage=spent)

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        await self._client.close()


def _model_error(exc: openai.APIError) -> ModelError:
    if isinstance(exc, openai.APIStatusError):
        return ModelError(
            f"model server answered {exc.status_code}: {exc.message}",
            retry_after=_retry_after(exc),
            status=exc.status_code,
        )
    return ModelError(f"model server unreachable: {exc}")


def tool_result(call: ToolCall, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": content}


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
