"""The Anthropic model through the real ``anthropic`` client against the fake Messages API: mapping to and
from our tool schema, streaming, usage, and its errors as ModelError (with status and retry-after)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from agents.anthropic_model import AnthropicChat, to_anthropic, tools_to_anthropic
from agents.models import ModelError, ModelTurn, ToolCall, tool_result
from agents.tools import make_tool
from agents.usage import Usage
from tests.fakes.anthropic_api import FakeAnthropic, text_reply, tool_use_reply


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key="sk-ant-unit") as server:
        yield server


def chat(fake: FakeAnthropic, key: str = "sk-ant-unit") -> AnthropicChat:
    return AnthropicChat("claude-test", api_key=key, base_url=fake.base_url, max_tokens=300)


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


SCHEMAS = [make_tool(add).schema]


async def test_a_tool_round_trip_maps_both_ways(fake: FakeAnthropic) -> None:
    fake.script_replies(tool_use_reply("add", {"a": 2, "b": 40}, "toolu_1"), text_reply("42 it is"))
    model = chat(fake)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "add 2 40"},
    ]
    first = await model.complete(messages, SCHEMAS)
    assert first.tool_calls == [ToolCall("toolu_1", "add", json.dumps({"a": 2, "b": 40}))]
    assert first.usage is not None
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    messages += [first.as_message(), tool_result(first.tool_calls[0], "42")]
    second = await model.complete(messages, SCHEMAS)
    await model.close()
    assert second == ModelTurn("42 it is", [], second.usage)
    sent = fake.requests[1]
    assert sent["system"] == "Be terse."
    assert sent["max_tokens"] == 300
    assert sent["tools"] == [
        {
            "name": "add",
            "description": "Add two integers.",
            "input_schema": SCHEMAS[0]["function"]["parameters"],
        }
    ]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 40}}
    ]
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]
    assert fake.calls_for("messages")[0].headers["anthropic-version"] == "2026-10-21"


def test_history_is_made_alternating_and_starts_with_the_user() -> None:
    system, messages = to_anthropic(
        [
            {"role": "system", "content": "S"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": ""},
        ]
    )
    assert system == "S"
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["text"] for b in messages[2]["content"]] == ["one", "two"]


def test_tool_schema_without_parameters_still_has_an_object_schema() -> None:
    [tool] = tools_to_anthropic([{"type": "function", "function": {"name": "ping", "parameters": {}}}])
    assert tool == {"name": "ping", "input_schema": {"type": "object"}}


async def test_streaming_yields_text_deltas_then_one_turn(fake: FakeAnthropic) -> None:
    fake.script_replies(text_reply("Hello there, streaming world"))
    model = chat(fake)
    items = [item async for item in model.stream([{"role": "user", "content": "hi"}], SCHEMAS)]
    await model.close()
    *deltas, final = items
    assert len(deltas) > 1
    assert all(isinstance(d, str) for d in deltas)
    assert "".join(str(d) for d in deltas) == "Hello there, streaming world"
    assert isinstance(final, ModelTurn)
    assert final.content == "Hello there, streaming world"
    assert final.usage is not None
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 1
    assert fake.requests[0]["stream"] is True


async def test_streamed_tool_use_is_assembled_from_json_fragments(fake: FakeAnthropic) -> None:
    fake.script_replies(tool_use_reply("add", {"a": 12345, "b": 67890}, "toolu_s"))
    model = chat(fake)
    items = [item async for item in model.stream([{"role": "user", "content": "add"}], SCHEMAS)]
    await model.close()
    [final] = items
    assert isinstance(final, ModelTurn)
    assert final.tool_calls == [ToolCall("toolu_s", "add", json.dumps({"a": 12345, "b": 67890}))]


@pytest.mark.parametrize(("status", "transient"), [(529, True), (500, True), (400, False)])
async def test_server_errors_become_model_errors_with_their_status(
    fake: FakeAnthropic, status: int, transient: bool
) -> None:
    fake.fail_next(1, status=status)
    model = chat(fake)
    with pytest.raises(ModelError) as caught:
        await model.complete([{"role": "user", "content": "hi"}], [])
    await model.close()
    assert caught.value.status == status
    assert caught.value.transient is transient
    assert len(fake.requests) == 1  # max_retries=0: the dispatcher holds the retry budget


async def test_rate_limit_carries_retry_after(fake: FakeAnthropic) -> None:
    fake.rate_limit_next(1, retry_after=7)
    model = chat(fake)
    with pytest.raises(ModelError) as caught:
        await model.complete([{"role": "user", "content": "hi"}], [])
    await model.close()
    assert (caught.value.status, caught.value.retry_after, caught.value.transient) == (429, 7.0, False)


async def test_a_wrong_key_is_a_401_not_retried_elsewhere(fake: FakeAnthropic) -> None:
    model = chat(fake, key="sk-ant-wrong")
    with pytest.raises(ModelError) as caught:
        await model.complete([{"role": "user", "content": "hi"}], [])
    await model.close()
    assert caught.value.status == 401
    assert not caught.value.transient


async def test_an_unreachable_server_is_transient() -> None:
    model = AnthropicChat("claude-test", api_key="k", base_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(ModelError) as caught:
        await model.complete([{"role": "user", "content": "hi"}], [])
    await model.close()
    assert caught.value.status is None
    assert caught.value.transient


async def test_the_fake_refuses_what_the_real_api_refuses(fake: FakeAnthropic) -> None:
    client = anthropic.AsyncAnthropic(api_key="sk-ant-unit", base_url=fake.base_url, max_retries=0)
    cases: list[dict[str, Any]] = [
        {"max_tokens": 10, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        {"max_tokens": 10, "messages": [{"role": "assistant", "content": "a"}]},
        {
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]},
            ],
        },
        {
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_y", "name": "f", "input": {}}]},
                {"role": "user", "content": "no result"},
            ],
        },
        {"max_tokens": 10, "extra_body": {"temperature": 0.5}, "messages": [{"role": "user", "content": "a"}]},
    ]
    for body in cases:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model="claude-test", **body)  # type: ignore[call-overload]
        assert caught.value.body["type"] == "error"  # type: ignore[index]
        assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    await client.close()
    assert [c.status for c in fake.calls] == [400] * len(cases)


async def test_the_fake_needs_the_key_and_version_headers(fake: FakeAnthropic) -> None:
    import aiohttp

    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{fake.base_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["type"] == "authentication_error"
        async with s.post(f"{fake.base_url}/v1/messages", json=body, headers={"x-api-key": "sk-ant-unit"}) as r:
            assert r.status == 400
            assert "anthropic-version" in (await r.json())["error"]["message"]
        headers = {"x-api-key": "sk-ant-unit", "anthropic-version": "2023-06-01"}
        no_max = {"model": "m", "messages": body["messages"]}  # the client itself refuses to send this
        async with s.post(f"{fake.base_url}/v1/messages", json=no_max, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["error"]["message"] == "max_tokens: Field required"
        async with s.post(f"{fake.base_url}/v1/messages", json=body, headers=headers) as r:
            answer = await r.json()
    assert answer["stop_reason"] == "end_turn"
    assert answer["content"][0]["text"] == "echo: hi"
    assert Usage.from_dict(answer["usage"]).total > 0


async def test_an_overload_in_the_middle_of_a_stream_is_a_transient_529(fake: FakeAnthropic) -> None:
    fake.script_replies(text_reply("Hello there, streaming world"))
    fake.overload_next_stream()
    model = chat(fake)
    got: list[object] = []

    async def drain() -> None:
        async for item in model.stream([{"role": "user", "content": "hi"}], []):
            got.append(item)

    with pytest.raises(ModelError) as caught:
        await drain()
    await model.close()
    assert got == ["Hello"]  # what was streamed before the error
    assert caught.value.status == 529
    assert caught.value.transient
