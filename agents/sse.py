"""Streamed chat completions over aiohttp, parsed with orjson: the fast path for streamed turns.

Why it exists: with the ``openai`` SDK's streaming (httpx + a pydantic ``ChatCompletionChunk`` per SSE event)
the consumer spent its CPU building objects, and at 100 conversations streaming at once the first visible text
came after 2.1-4.0 s p50, later than the whole non-streamed answer (~1.6 s) in the same run. This module does the
same request (``POST {base_url}/chat/completions`` with ``stream: true`` and ``stream_options.include_usage``) and
reads the ``data:`` lines into plain dicts; the numbers with both clients are in docs/benchmarks.md ("Streamed
first text"). ``GATEWAY_MODEL_CLIENT=sdk`` goes back to the SDK (agents/models.py); ``complete()`` (not
streamed) always uses the SDK.

Followed: OpenAI's chat streaming reference (https://platform.openai.com/docs/api-reference/chat-streaming,
``chat.completion.chunk``) and the SSE format of the HTML standard (``data:`` lines joined by ``\\n``, an event
ends at a blank line, lines starting with ``:`` are comments/keep-alives), as the ``openai`` SDK (3.63,
``openai._streaming``) reads them: ``data: [DONE]`` ends the stream, a chunk carrying ``error`` is an error.
Errors become the same :class:`~agents.models.ModelError` as on the SDK path (status, ``Retry-After``); there
are no client retries here either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from agents.models import ModelError, ModelTurn, ToolCall, parse_retry_after
from agents.usage import Usage

#: Connections one client keeps to the model server (aiohttp's default of 100 would queue the 101st stream).
POOL_SIZE = 1000


class SSEParser:
    """Bytes of a ``text/event-stream`` in, the ``data`` of each complete event out. Lines end in ``\n`` or
    ``\r\n``; ``event:``, ``id:`` and ``retry:`` fields are ignored (for chat completions the SDK reads the
    data of every event alike)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        buffer = self._buffer + chunk if self._buffer else chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line, out)
        self._buffer = buffer[start:]
        return out

    def close(self) -> list[bytes]:
        """The stream ended: an event not ended by a blank line is dropped (the SSE standard; the SDK too)."""
        self._buffer = b""
        self._data = []
        return []

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            if self._data:
                out.append(b"\n".join(self._data))
                self._data = []
            return
        if line.startswith(b":"):
            return  # a comment: keep-alive
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)


class StreamAssembler:
    """``chat.completion.chunk`` dicts in; text deltas as they come, then the whole :class:`ModelTurn`."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def add(self, chunk: Mapping[str, Any]) -> str | None:
        """Take one chunk; its text delta (None: none)."""
        error = chunk.get("error")
        if error:  # as the SDK: an APIError with the error's message, no status (transient)
            message = error.get("message") if isinstance(error, dict) else None
            if not message or not isinstance(message, str):
                message = "An error occurred during streaming"
            raise ModelError(f"model server unreachable: {message}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage.from_dict(usage)
        choices = chunk.get("choices") or ()
        if not choices:
            return None
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        delta = choice.get("delta") or {}
        for part in delta.get("tool_calls") or ():
            call = self.calls.setdefault(int(part.get("index", 0)), {"id": "", "name": "", "arguments": []})
            call["id"] = part.get("id") or call["id"]
            function = part.get("function")
            if function is not None:
                call["name"] = function.get("name") or call["name"]
                call["arguments"].append(function.get("arguments") or "")
        text = delta.get("content")
        if text:
            self.texts.append(text)
            return str(text)
        return None

    def turn(self) -> ModelTurn:
        calls = [
            ToolCall(c["id"], c["name"], "".join(c["arguments"]) or "{}")
            for _, c in sorted(self.calls.items())
            if c["name"]
        ]
        return ModelTurn(content="".join(self.texts) or None, tool_calls=calls, usage=self.usage)


def _status_message(status: int, raw: bytes) -> str:
    """The SDK's ``APIStatusError.message`` (openai 3.63, ``_make_status_error_from_response``): ``Error code: N``,
    then `` - `` and the body's ``error.message`` (or top-level ``message``) when it has one."""
    message = f"Error code: {status}"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return message
    error = body.get("error", body) if isinstance(body, dict) else None
    text = error.get("message") if isinstance(error, dict) else None
    return f"{message} - {text}" if isinstance(text, str) and text else message


class FastStream:
    """One aiohttp session to one OpenAI-compatible server, made on first use (it needs the running loop)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, timeout: float) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            **headers,
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE), timeout=self._timeout, headers=self._headers
            )
        return self._session

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[str | ModelTurn]:
        """``request``: the body without ``stream``; text deltas, then one :class:`ModelTurn`."""
        body = orjson.dumps({**request, "stream": True, "stream_options": {"include_usage": True}})
        assembler = StreamAssembler()
        parser = SSEParser()
        try:
            async with self._open().post(self.url, data=body) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    raise ModelError(
                        f"model server answered {resp.status}: {_status_message(resp.status, raw)}",
                        retry_after=parse_retry_after(resp.headers.get("retry-after")),
                        status=resp.status,
                    )
                done = False
                async for chunk in resp.content.iter_any():
                    for data in parser.feed(chunk):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        text = assembler.add(orjson.loads(data))
                        if text:
                            yield text
                    if done:
                        async for _ in resp.content.iter_any():  # the rest (none, as a rule): the connection is reused
                            pass
                        break
                parser.close()
        except orjson.JSONDecodeError as exc:
            raise ModelError(f"model stream sent bad JSON: {exc}") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise ModelError(f"model stream broke off: {exc!r}") from exc
        except TimeoutError as exc:
            raise ModelError("model server unreachable: Request timed out.") from exc
        except aiohttp.ClientError as exc:
            raise ModelError(f"model server unreachable: {exc}") from exc
        yield assembler.turn()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
            await asyncio.sleep(0)  # let the connector's transports close before the loop goes
