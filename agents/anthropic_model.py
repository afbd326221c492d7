"""Anthropic's Messages API behind the :class:`~agents.models.ChatModel` interface.

Followed: the Messages API (``POST /v1/messages``) at ``anthropic-version: 2026-10-21``, the version the
official ``anthropic`` client we depend on sends (its ``ANTHROPIC_API_VERSION``); nothing used here
differs from 2023-06-01 (no ``temperature``/``top_p``/``top_k``, which 2026-10-21 removed).

The agent loop speaks the OpenAI chat shape (agents/agent.py, agents/tools.py); this module maps it:

- ``system`` messages become the top-level ``system`` parameter;
- user and assistant turns become alternating messages (consecutive ones of a role are merged: the
  API refuses two in a row), a leading assistant turn gets a user placeholder before it (the first
  message must be the user's);
- an assistant turn with ``tool_calls`` becomes ``tool_use`` blocks (``input`` is the decoded JSON
  arguments), each ``role: tool`` result a ``tool_result`` block in the next user message;
- tool schemas ``{"type": "function", "function": {name, description, parameters}}`` become
  ``{name, description, input_schema}``;
- the answer's ``text`` blocks are the content, ``tool_use`` blocks the tool calls, ``usage``
  (``input_tokens``/``output_tokens``) the turn's cost.

Errors and retries as for OpenAI (agents/models.py): the client never retries (``max_retries=0``), every
failure is a :class:`ModelError` with the HTTP status and the server's ``retry-after``; the dispatcher
holds the one retry budget. A 529 (``overloaded_error``) or 5xx is transient (a fallback list moves on),
a 4xx is not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from agents.models import ModelError, ModelTurn, ToolCall
from agents.usage import Usage

DEFAULT_MAX_TOKENS = 1024
#: The first message must be the user's; a history window that starts with an answer gets this before it.
EARLIER = "(earlier in this conversation)"


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


#: Error types of an ``event: error`` inside a stream (answered 200) as the status the same error has outside one.
STREAM_ERROR_STATUS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429, "timeout_error": 504}


def _error(exc: Exception) -> ModelError:
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an error event in a stream that began with 200: its type says what went wrong
            body = exc.body if isinstance(exc.body, dict) else {}
            kind = (body.get("error") or {}).get("type") if isinstance(body.get("error"), dict) else None
            status = STREAM_ERROR_STATUS.get(str(kind), 500)
        return ModelError(f"Anthropic answered {status}: {exc.message}", retry_after=_retry_after(exc), status=status)
    return ModelError(f"Anthropic unreachable: {exc}")


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return [{"type": "text", "text": p["text"]} for p in content if isinstance(p, dict) and p.get("text")]
    return []


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-shaped messages as Anthropic's ``system`` and alternating ``messages``."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        role = m.get("role")
        if role == "system":
            if isinstance(m.get("content"), str) and m["content"].strip():
                system.append(m["content"])
        elif role == "user":
            add("user", _blocks(m.get("content")))
        elif role == "assistant":
            blocks = _blocks(m.get("content"))
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": fn.get("name", ""),
                        "input": _arguments(fn.get("arguments", "")),
                    }
                )
            add("assistant", blocks)
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": str(m.get("content") or "")}
            add("user", [result])
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": EARLIER}]})
    return "\n\n".join(system), out


def tools_to_anthropic(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn = t.get("function", t)
        schema = dict(fn.get("parameters") or {})
        schema.setdefault("type", "object")
        entry: dict[str, Any] = {"name": fn["name"], "input_schema": schema}
        if fn.get("description"):
            entry["description"] = fn["description"]
        out.append(entry)
    return out


def from_anthropic(message: Any) -> ModelTurn:
    """A Messages API answer (the client's ``Message``) as a :class:`ModelTurn`."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
    usage = getattr(message, "usage", None)
    spent = Usage(int(usage.input_tokens or 0), int(usage.output_tokens or 0)) if usage is not None else None
    return ModelTurn(content="".join(texts) or None, tool_calls=calls, usage=spent)


class AnthropicChat:
    """A Claude model through the official client (``max_retries=0``: the dispatcher retries the turn)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout: float = 60.0,
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self._client = client or anthropic.AsyncAnthropic(
            api_key=api_key or "unused", base_url=base_url, timeout=timeout, max_retries=0
        )

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        system, converted = to_anthropic(messages)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "messages": converted}
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = tools_to_anthropic(tools)
        return kwargs

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        try:
            message = await self._client.messages.create(**self._request(messages, tools))
        except anthropic.APIError as exc:
            raise _error(exc) from exc
        return from_anthropic(message)

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[str | ModelTurn]:
        """Text deltas as they come (``content_block_delta`` / ``text_delta``), then one final :class:`ModelTurn`.

        Tool input arrives as ``input_json_delta`` fragments of the block opened by ``content_block_start``;
        ``message_start`` carries the input tokens, ``message_delta`` the output tokens and ``stop_reason``.
        """
        texts: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        usage = Usage()
        try:
            events = await self._client.messages.create(**self._request(messages, tools), stream=True)
            async for event in events:
                if event.type == "message_start":
                    u = event.message.usage
                    usage = Usage(int(u.input_tokens or 0), int(u.output_tokens or 0))
                elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                    block = event.content_block
                    blocks[event.index] = {"id": block.id, "name": block.name, "json": []}
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        texts.append(delta.text)
                        yield delta.text
                    elif delta.type == "input_json_delta" and event.index in blocks:
                        blocks[event.index]["json"].append(delta.partial_json)
                elif event.type == "message_delta":
                    usage = Usage(usage.input_tokens, int(event.usage.output_tokens or 0))
        except anthropic.APIError as exc:
            raise _error(exc) from exc
        calls = [ToolCall(b["id"], b["name"], "".join(b["json"]) or "{}") for _, b in sorted(blocks.items())]
        yield ModelTurn(content="".join(texts) or None, tool_calls=calls, usage=usage)

    async def close(self) -> None:
        await self._client.close()
