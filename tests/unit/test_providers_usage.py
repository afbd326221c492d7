"""Model chains (provider parsing, fallback order), usage accounting in the agent loop, budget arithmetic,
and the history record and its rendering."""

from __future__ import annotations

from typing import Any

import pytest

from agents import Agent, ModelTurn, ToolCall
from agents.anthropic_model import AnthropicChat
from agents.context import Turn
from agents.models import ModelError, OpenAIChat
from agents.providers import ModelChain, ModelSpec, model_chain
from agents.usage import Usage
from consumers.dispatch import with_what_was_done
from consumers.usage import Budget, UsageLedger, exhausted, spent
from gateway.commands.history import render, totals, turn_dict
from gateway.commands.usage_report import parse_counters
from gateway.core.config import AgentConfig, GatewayFile, RouteConfig
from gateway.core.metrics import Metrics
from gateway.core.store.memory import MemoryStore
from tests.unit.test_agent_tools import ScriptedModel, make_ctx


def test_specs_parse_provider_and_model() -> None:
    assert ModelSpec.parse("anthropic:claude-x") == ModelSpec("anthropic", "claude-x")
    assert ModelSpec.parse("gpt-4o-mini") == ModelSpec("openai", "gpt-4o-mini")
    assert ModelSpec.parse("claude-y", "anthropic") == ModelSpec("anthropic", "claude-y")
    with pytest.raises(ValueError, match="unknown model provider"):
        ModelSpec.parse("cohere:x")


def test_a_section_builds_its_chain_and_a_named_key_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    section = AgentConfig(path="m:a", provider="anthropic", model="claude-x", fallback=["openai:gpt-4o-mini"])
    chain = model_chain(section)
    assert [s.label for s in chain.specs] == ["anthropic:claude-x", "openai:gpt-4o-mini"]
    assert isinstance(chain.model(0), AnthropicChat)
    assert isinstance(chain.model(1), OpenAIChat)
    with pytest.raises(ValueError, match="ACME_KEY"):
        model_chain(AgentConfig(path="m:a", provider="anthropic", model="c", api_key_env="ACME_KEY"))
    monkeypatch.setenv("ACME_KEY", "sk-ant-acme")
    assert model_chain(AgentConfig(path="m:a", provider="anthropic", model="c", api_key_env="ACME_KEY")).specs


class Failing:
    def __init__(self, status: int | None) -> None:
        self.status = status
        self.calls = 0

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        self.calls += 1
        raise ModelError(f"status {self.status}", status=self.status, retry_after=3 if self.status == 429 else None)


def chain_of(*models: Any) -> ModelChain:
    chain = ModelChain([ModelSpec("openai", f"m{i}") for i in range(len(models))])
    chain._models = dict(enumerate(models))
    return chain


async def test_fallback_moves_on_after_5xx_529_and_timeouts_in_order() -> None:
    first, second, third = Failing(529), Failing(None), ScriptedModel(ModelTurn("third answered"))
    turn = await chain_of(first, second, third).complete([], [])
    assert turn.content == "third answered"
    assert (first.calls, second.calls) == (1, 1)


@pytest.mark.parametrize("status", [400, 401, 429])
async def test_fallback_never_moves_on_after_a_4xx(status: int) -> None:
    first, second = Failing(status), ScriptedModel(ModelTurn("not asked"))
    with pytest.raises(ModelError) as caught:
        await chain_of(first, second).complete([], [])
    assert caught.value.status == status
    assert second.turns  # the second model was never called


async def test_when_all_fail_the_last_error_is_raised() -> None:
    with pytest.raises(ModelError, match="every model failed") as caught:
        await chain_of(Failing(500), Failing(503)).complete([], [])
    assert caught.value.status == 503


def test_a_routes_key_replaces_the_primary_providers_key_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_ANTHROPIC_KEY", "sk-ant-acme")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-default")
    chain = ModelChain([ModelSpec("anthropic", "c"), ModelSpec("anthropic", "d"), ModelSpec("openai", "g")])
    acme = chain.for_key("ACME_ANTHROPIC_KEY")
    assert acme is chain.for_key("ACME_ANTHROPIC_KEY")  # one client per key
    assert chain.for_key(None) is chain
    keys = [m._client.api_key for m in (acme.model(0), acme.model(1), chain.model(0))]  # type: ignore[attr-defined]
    assert keys == ["sk-ant-acme", "sk-ant-acme", "sk-ant-default"]
    assert acme.model(2)._client.api_key != "sk-ant-acme"  # type: ignore[attr-defined]


async def test_the_agent_loop_sums_usage_and_keeps_its_tool_calls() -> None:
    model = ScriptedModel(
        ModelTurn(None, [ToolCall("c1", "double", '{"x": 4}')], Usage(100, 10)),
        ModelTurn("it is 8", usage=Usage(130, 5)),
    )
    agent = Agent("a", model=model)

    @agent.tool
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    ctx = make_ctx("double 4")
    await agent.on_event(ctx, ctx.event)
    assert ctx.usage == Usage(230, 15)
    assert ctx.tool_calls == [{"name": "double", "arguments": '{"x": 4}', "result": "8", "ok": True}]


def test_budget_arithmetic() -> None:
    assert spent({"in": "70", "out": "30"}) == 100
    assert spent({"agent|a|in": "5", "agent|a|out": "6", "agent|b|in": "99"}, "agent|a|") == 11
    per_conv = Budget(per_conversation=100, per_day=None, message=None)
    assert not exhausted(per_conv, {"in": "60", "out": "39"}, {}, "")
    assert exhausted(per_conv, {"in": "60", "out": "40"}, {}, "")
    per_day = Budget(per_conversation=None, per_day=50, message=None)
    assert not exhausted(per_day, {"in": "1000"}, {"agent|a|in": "49"}, "agent|a|")
    assert exhausted(per_day, {}, {"agent|a|in": "40", "agent|a|out": "10"}, "agent|a|")
    assert Budget.of(AgentConfig(path="m:a")) is None


async def test_a_spent_budget_ends_the_turn_with_its_message_and_counts_go_on() -> None:
    store = MemoryStore("unit")
    file = GatewayFile(
        agents={"a": AgentConfig(path="m:a", budget_tokens_per_conversation=100, budget_message="Budget spent.")},
        routes=[RouteConfig(platform="slack", channel="C", agent="a", name="acme")],
    )
    ledger = UsageLedger(store, Metrics(), file, default_agent="echo")
    ctx = make_ctx()
    assert await ledger.admit("a", ctx)
    assert ctx.route == "acme"
    ctx.usage = Usage(80, 20)
    await ledger.record("a", ctx)
    assert await store.hall("usage:conv:a:slack:T:C:1") == {"in": "80", "out": "20", "turns": "1"}
    assert parse_counters(await store.hall("usage:routes")) == {
        "acme": {"input_tokens": 80, "output_tokens": 20, "turns": 1}
    }
    later = make_ctx("again")
    assert not await ledger.admit("a", later)
    assert later.replies == ["Budget spent."]


async def test_a_routes_day_budget_counts_every_conversation_of_the_route() -> None:
    store = MemoryStore("unit")
    file = GatewayFile(routes=[RouteConfig(platform="slack", agent="a", name="r", budget_tokens_per_day=10)])
    ledger = UsageLedger(store, Metrics(), file)
    ctx = make_ctx()
    assert await ledger.admit("a", ctx)
    ctx.usage = Usage(8, 2)
    await ledger.record("a", ctx)
    other = make_ctx()
    other.conversation_key = "slack:T:C:2"
    assert not await ledger.admit("a", other)
    assert other.replies[0].startswith("This conversation has used up its budget")


def test_old_history_records_still_load_and_new_ones_round_trip() -> None:
    old = Turn.from_json('{"role": "user", "text": "hi", "event_id": "e1", "sender": "u1"}')
    assert old == Turn("user", "hi", "e1", "u1")
    new = Turn("assistant", "8", "e1", None, ({"name": "double", "ok": True},), {"input_tokens": 3}, 1.5)
    assert Turn.from_json(new.to_json()) == new
    assert "tool_calls" not in Turn("user", "x", "e").to_json()  # records without them stay as small as before


def test_what_was_done_goes_on_the_first_reply_or_the_last_message() -> None:
    ctx = make_ctx()
    ctx.usage = Usage(5, 1)
    ctx.tool_calls = [{"name": "t", "arguments": "{}", "result": "r", "ok": True}]
    records = [Turn("user", "q", "e"), Turn("assistant", "a1", "e"), Turn("assistant", "a2", "e")]
    out = with_what_was_done(records, 1, ctx)
    assert [bool(t.tool_calls) for t in out] == [False, True, False]
    assert out[1].usage == {"input_tokens": 5, "output_tokens": 1}
    assert all(t.at is not None for t in out)
    silent = with_what_was_done([Turn("user", "q", "e")], 1, ctx)
    assert silent[0].tool_calls


def test_history_rendering_shows_messages_tools_and_tokens() -> None:
    turns = [
        Turn("user", "add 2 40", "e1", "u7", at=0.0),
        Turn(
            "assistant",
            "42",
            "e1",
            tool_calls=({"name": "add", "arguments": '{"a": 2, "b": 40}', "result": "42", "ok": True},),
            usage={"input_tokens": 120, "output_tokens": 30},
            at=1.0,
        ),
        Turn("user", "old record", "e0"),
    ]
    text = "\n".join(render("calc", "telegram:default:42", turns))
    assert "telegram:default:42  (agent calc, 3 records)" in text
    assert "1970-01-01 00:00:00  user u7" in text
    assert 'tool add({"a": 2, "b": 40}) -> 42' in text
    assert "tokens 120 in, 30 out" in text
    assert text.endswith("total tokens: 120 in, 30 out")
    assert totals(turns) == {"input_tokens": 120, "output_tokens": 30}
    assert turn_dict(turns[1])["tool_calls"][0]["name"] == "add"


async def test_openai_usage_is_read_from_prompt_and_completion_tokens() -> None:
    from tests.fakes.openai_api import FakeOpenAI, ModelReply

    async with FakeOpenAI(api_key="sk-unit") as fake:
        fake.script_replies(
            ModelReply(content="hi", usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14})
        )
        model = OpenAIChat("gpt-4o-mini", base_url=f"{fake.base_url}/v1", api_key="sk-unit")
        turn = await model.complete([{"role": "user", "content": "hello"}], [])
        await model.close()
    assert turn.usage == Usage(11, 3)


def test_gateway_check_names_a_provider_section_that_cannot_work(tmp_path: Any) -> None:
    from agents.registry import agents_and_problems
    from gateway.core.settings import Settings

    file = GatewayFile(
        agents={
            "claude": AgentConfig(path="tests.e2e.tool_agent:agent", provider="anthropic", api_key_env="NOT_SET_KEY"),
            "bad": AgentConfig(path="agents.echo:EchoAgent", provider="anthropic", model="c"),
        }
    )
    _, problems = agents_and_problems(Settings(), file)
    assert any("agent 'claude'" in p and "NOT_SET_KEY" in p for p in problems)
    assert any("agent 'bad'" in p and "declarative agents" in p for p in problems)


async def test_the_clients_own_stream_helper_accepts_the_fakes_events() -> None:
    """The fake's SSE is what the SDK's accumulator expects: the same message comes out as without streaming."""
    import anthropic

    from tests.fakes.anthropic_api import AnthropicReply, FakeAnthropic

    async with FakeAnthropic(api_key="sk-ant-unit") as fake:
        fake.script(lambda req: AnthropicReply("Let me add.", (("toolu_9", "add", {"a": 1, "b": 2}),)))
        client = anthropic.AsyncAnthropic(api_key="sk-ant-unit", base_url=fake.base_url, max_retries=0)
        async with client.messages.stream(
            model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "add"}]
        ) as stream:
            message = await stream.get_final_message()
        plain = await client.messages.create(
            model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "add"}]
        )
        await client.close()
    assert [b.model_dump() for b in message.content] == [b.model_dump() for b in plain.content]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == plain.usage.output_tokens


async def test_a_stream_that_fails_before_its_first_delta_moves_on_and_one_that_fails_later_does_not() -> None:
    from tests.fakes.anthropic_api import FakeAnthropic, text_reply

    async with FakeAnthropic(api_key="k") as fake:
        fake.script(lambda req: text_reply("streamed answer"))
        first = AnthropicChat("claude-a", api_key="k", base_url=fake.base_url)
        second = AnthropicChat("claude-b", api_key="k", base_url=fake.base_url)
        chain = chain_of(first, second)
        fake.fail_next(1, status=529)
        items = [i async for i in chain.stream([{"role": "user", "content": "hi"}], [])]
        assert [c.args["model"] for c in fake.calls] == ["claude-a", "claude-b"]
        assert "".join(i for i in items if isinstance(i, str)) == "streamed answer"
        fake.overload_next_stream()
        got: list[object] = []

        async def drain() -> None:
            async for item in chain.stream([{"role": "user", "content": "hi"}], []):
                got.append(item)

        with pytest.raises(ModelError):
            await drain()
        await chain.close()
    assert got == ["strea"]  # text went out: nothing is taken back, and no second model answers again
    assert [c.args["model"] for c in fake.calls][2:] == ["claude-a"]
