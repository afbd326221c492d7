"""agents/sse.py reads a chat-completions stream exactly as the ``openai`` SDK does: the same SSE bytes, served
in awkward pieces by a local server, give both clients the same deltas, tool calls, usage, finish and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agents.models import ModelError, ModelTurn, OpenAIChat
from agents.sse import SSEParser, StreamAssembler


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def sse(*events: dict[str, Any] | str, eol: str = "\n") -> bytes:
    out = []
    for e in events:
        out.append(e if isinstance(e, str) else f"data: {json.dumps(e, ensure_ascii=False)}{eol}{eol}")
    return "".join(out).encode()


USAGE = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
TOOLS = sse(
    ": keep-alive\n\n",
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Looking "}),
    chunk({"content": "it up 🔎…"}),
    chunk(
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}
    ),
    chunk(
        {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": '{"'}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "é'}}]}),
    ": still here\n\n",
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": 'x": 1}'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]}),
    chunk({}, finish="tool_calls"),
    chunk(None, usage=USAGE),
    "data: [DONE]\n\n",
    eol="\r\n",
)
TEXT_NO_DONE = sse(chunk({"content": "multi"}), chunk({"content": "\nline"}), chunk({}, finish="stop"))[:-1]
STREAM_ERROR = sse(chunk({"content": "half"}), {"error": {"message": "overloaded mid-stream", "type": "server"}})
CASES = {"tools": TOOLS, "text_without_done": TEXT_NO_DONE}


async def serve(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> TestServer:
    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        if status != 200:
            return web.Response(status=status, body=body, headers=headers, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(0, len(body), 7):  # pieces that split lines, CRLFs and UTF-8 sequences
            await resp.write(body[i : i + 7])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def served() -> AsyncIterator[list[TestServer]]:
    servers: list[TestServer] = []
    yield servers
    for s in servers:
        await s.close()


async def run(server: TestServer, client: str) -> list[str | ModelTurn] | ModelError:
    model = OpenAIChat("m", base_url=str(server.make_url("/v1")), api_key="sk-unit", stream_client=client)  # type: ignore[arg-type]
    try:
        return [i async for i in model.stream([{"role": "user", "content": "hi"}], [])]
    except ModelError as exc:
        return exc
    finally:
        await model.close()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_both_clients_read_the_same_stream(case: str, served: list[TestServer]) -> None:
    served.append(server := await serve(CASES[case]))
    fast, sdk = await run(server, "fast"), await run(server, "sdk")
    assert isinstance(fast, list)
    assert fast == sdk
    assert isinstance(fast[-1], ModelTurn)
    if case == "tools":
        turn = fast[-1]
        assert turn.content == "Looking it up 🔎…"
        assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
            ("call_a", "f", '{"q": "é"}'),
            ("call_b", "g", '{"x": 1}'),
        ]
        assert turn.usage is not None
        assert (turn.usage.input_tokens, turn.usage.output_tokens) == (9, 7)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_finish_reason_as_the_sdk_sees_it(case: str, served: list[TestServer]) -> None:
    served.append(server := await serve(CASES[case]))
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-unit", max_retries=0)
    finish = None
    try:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for c in stream:
            for choice in c.choices:
                finish = choice.finish_reason or finish
    finally:
        await client.close()
    parser, assembler = SSEParser(), StreamAssembler()
    body = CASES[case]
    events = [e for i in range(0, len(body), 5) for e in parser.feed(body[i : i + 5])] + parser.close()
    for data in events:
        if not data.startswith(b"[DONE]"):
            assembler.add(json.loads(data))
    assert assembler.finish_reason == finish
    assert finish == ("tool_calls" if case == "tools" else None)  # an event cut off by the end is dropped


@pytest.mark.parametrize(
    ("body", "status", "headers"),
    [
        (STREAM_ERROR, 200, None),
        (b'{"error": {"message": "Rate limit reached", "type": "requests"}}', 429, {"Retry-After": "3"}),
        (b'{"error": {"message": "bad model"}}', 400, None),
        (b"upstream exploded", 502, None),
    ],
)
async def test_errors_map_to_the_same_model_error(
    body: bytes, status: int, headers: dict[str, str] | None, served: list[TestServer]
) -> None:
    served.append(server := await serve(body, status=status, headers=headers))
    fast, sdk = await run(server, "fast"), await run(server, "sdk")
    assert isinstance(fast, ModelError)
    assert isinstance(sdk, ModelError)
    assert (str(fast), fast.status, fast.retry_after, fast.transient) == (
        str(sdk),
        sdk.status,
        sdk.retry_after,
        sdk.transient,
    )


async def test_an_unreachable_server_is_transient() -> None:
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="sk-unit", stream_client="fast")
    try:
        with pytest.raises(ModelError) as err:
            _ = [i async for i in model.stream([{"role": "user", "content": "hi"}], [])]
        assert err.value.status is None
        assert err.value.transient
    finally:
        await model.close()


async def test_the_consumer_closes_a_shared_agents_model_connections(served: list[TestServer]) -> None:
    from agents.agent import Agent
    from agents.registry import AgentFactory

    served.append(server := await serve(TOOLS))
    model = OpenAIChat("m", base_url=str(server.make_url("/v1")), api_key="sk-unit", stream_client="fast")
    _ = [i async for i in model.stream([{"role": "user", "content": "hi"}], [])]
    session = model._fast_stream()._open()
    await AgentFactory("llm", Agent("llm", model=model)).close()
    assert session.closed
