"""Flows: step transitions, validation re-asks, branches, instructions, state and redelivered turns."""

from __future__ import annotations

import itertools
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from agents import Agent, Flow, Instructions, ModelTurn, Step, ToolCall, TurnContext
from agents.context import SessionContext
from agents.flows import FlowConflict, FlowError, FlowState
from agents.flows import state as flow_state
from agents.flows.model_step import slots_tool, system_prompt
from agents.usage import Usage
from examples.ticket_flow import Ticket
from examples.ticket_flow import flow as ticket_flow
from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress
from gateway.core.store.memory import MemoryStore
from tests.fakes.openai_api import FakeOpenAI

KEY = "slack:T:C:1"


def thread_message(text: str, event_id: str, *, stream: bool = False) -> Event:
    """A Slack message event in the test conversation's thread (tests/unit/test_flow_streaming.py uses it too)."""
    return Event(
        id=event_id,
        platform="slack",
        delivery_id=f"Ev{event_id}",
        kind=EventKind.MESSAGE,
        conversation_key=KEY,
        text=text,
        stream=stream,
        reply_to=ReplyAddress(platform="slack", bot="T", channel="C", thread="1"),
        message_ref=f"slack:T:C:{event_id}",
    )


class Model:
    """A chat model that answers from a list, and keeps what it was asked."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.requests: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        self.requests.append((messages, tools))
        return self.turns.pop(0)


def fill(**slots: Any) -> ModelTurn:
    return ModelTurn(None, [ToolCall("call_1", "fill_slots", json.dumps(slots))], usage=Usage(120, 15))


class Chat:
    """One conversation with a flow agent over an in-memory store: each ``say`` is one turn."""

    def __init__(self, agent: Any, store: MemoryStore | None = None) -> None:
        self.agent = agent
        self.store = store or MemoryStore("unit")
        self.ids = itertools.count(1)
        self.last: TurnContext | None = None

    def ctx(self, *texts: str, ids: list[str] | None = None) -> TurnContext:
        events = [
            thread_message(text, event_id)
            for text, event_id in zip(texts, ids or [f"e{next(self.ids)}" for _ in texts], strict=True)
        ]

        async def send_now(message: OutboundMessage) -> None:
            return None

        return TurnContext(SessionContext("ticket", KEY, self.store), events, history_window=50, send_now=send_now)

    async def say(self, *texts: str, ids: list[str] | None = None) -> list[str]:
        self.last = ctx = self.ctx(*texts, ids=ids)
        await self.agent.on_event(ctx, ctx.event)
        return ctx.replies

    async def state(self) -> FlowState:
        return await flow_state.load(self.store, "ticket", KEY)


class Contact(BaseModel):
    email: str = Field(pattern=r"^[\w.+-]+@[\w-]+\.[\w.]+$", description="email address")


class Trip(BaseModel):
    kind: Literal["train", "plane"]
    seat: int = Field(ge=1, le=300, description="seat number")


def trip_flow() -> Flow:
    return Flow(
        "trip",
        schema=Trip,
        steps=[
            Step("kind", collect=["kind"], prompt="Train or plane?", branch=lambda d: d["kind"]),
            Step("train", prompt="Trains have no seat numbers here.", next="end"),
            Step("plane", collect=["seat"], prompt="Which seat?"),
            Step("bye", prompt="Seat {seat} on a {kind}. Bye!"),
        ],
    )


async def test_a_flow_asks_validates_reasks_and_goes_on() -> None:
    chat = Chat(trip_flow())
    assert await chat.say("hello") == ["Train or plane?"]
    assert await chat.say("a boat") == ["That is not a valid kind: input should be 'train' or 'plane'. Train or plane?"]
    assert (await chat.state()).attempts == 1
    assert await chat.say("plane please") == ["Which seat?"]
    assert (await chat.state()).attempts == 0
    assert await chat.say("999") == [
        "That is not a valid seat number: input should be less than or equal to 300. Which seat?"
    ]
    assert await chat.say("42") == ["Seat 42 on a plane. Bye!"]
    done = await chat.state()
    assert done.done
    assert done.data == {"kind": "plane", "seat": 42}
    assert await chat.say("again") == ["Train or plane?"]  # a finished flow starts over
    assert (await chat.state()).data == {}


async def test_a_branch_on_the_collected_data_picks_the_step() -> None:
    chat = Chat(trip_flow())
    assert await chat.say("by train") == ["Trains have no seat numbers here."]  # the first message answers too
    assert (await chat.state()).done


async def test_the_first_message_is_not_refused_when_it_was_no_answer() -> None:
    chat = Chat(trip_flow())
    assert await chat.say("hi there") == ["Train or plane?"]
    assert (await chat.state()).attempts == 0


async def test_a_step_with_its_own_model_and_a_validator_message() -> None:
    from pydantic import field_validator

    class Age(BaseModel):
        age: int

        @field_validator("age")
        @classmethod
        def adult(cls, value: int) -> int:
            if value < 18:
                raise ValueError("You must be 18 or older.")
            return value

    flow = Flow(
        "age", steps=[Step("age", collect=Age, prompt="How old are you?"), Step("ok", prompt="Welcome, {age}.")]
    )
    chat = Chat(flow)
    assert await chat.say("hi") == ["How old are you?"]
    assert await chat.say("12") == ["You must be 18 or older. How old are you?"]
    assert await chat.say("30") == ["Welcome, 30."]


async def test_a_step_without_a_prompt_asks_for_its_fields_by_their_description() -> None:
    flow = Flow("c", steps=[Step("quiet"), Step("c", collect=Contact)])
    assert await Chat(flow).say("hi") == ["Please tell me your email address"]


async def test_a_pattern_field_is_found_inside_a_sentence() -> None:
    flow = Flow("c", steps=[Step("c", collect=Contact, prompt="Your email?"), Step("d", prompt="Got {email}.")])
    chat = Chat(flow)
    assert await chat.say("you can write to ada@example.com, thanks") == ["Got ada@example.com."]


async def test_a_step_that_collects_two_fields_says_what_is_still_needed() -> None:
    flow = Flow("t", schema=Trip, steps=[Step("both", collect=["kind", "seat"], prompt="Kind and seat?")])
    chat = Chat(flow)
    assert await chat.say("hi") == ["Kind and seat?"]
    assert await chat.say("a train") == ["Still needed: seat number"]
    assert await chat.say("7") == []
    assert (await chat.state()).data == {"kind": "train", "seat": 7}


async def test_the_ticket_flow_collects_everything_and_the_model_fills_the_free_text() -> None:
    model = Model(fill(problem="The parcel never arrived", category="missing"))
    ticket_flow.use_model(model)
    chat = Chat(ticket_flow)
    assert await chat.say("hi, I need help") == ["Which order is it about? (an order number, like A-1042)"]
    assert await chat.say("1042") == [
        "That is not a valid order number, like A-1042. Which order is it about? (an order number, like A-1042)"
    ]
    assert await chat.say("it is a-1042") == ["What went wrong with order A-1042?"]
    assert model.requests == []  # nothing so far needed a model
    assert await chat.say("it never showed up") == ["How can we reach you? (email or phone)"]
    assert chat.last is not None
    assert chat.last.usage == Usage(120, 15)
    assert [c["name"] for c in chat.last.tool_calls] == ["fill_slots"]
    [(messages, tools)] = model.requests
    assert messages[-1] == {"role": "user", "content": "it never showed up"}
    assert "You MUST NOT:\n- promise a refund or a delivery date" in messages[0]["content"]
    assert set(tools[0]["function"]["parameters"]["properties"]) == {"problem", "category"}
    [summary] = await chat.say("ada@example.com")
    assert summary == (
        "Ticket opened for order A-1042 (missing): The parcel never arrived. We will contact you at ada@example.com."
    )
    assert chat.last is not None
    stored = await chat.last.memory.retrieve("ticket-A-1042")
    assert stored is not None
    assert Ticket.model_validate_json(stored["content"]).category == "missing"


async def test_a_category_named_in_the_text_is_taken_without_the_model_and_branches() -> None:
    model = Model(fill(problem="The screen is cracked"))
    ticket_flow.use_model(model)
    chat = Chat(ticket_flow)
    await chat.say("A-2001")
    assert await chat.say("It arrived damaged, the screen is cracked") == [
        "Sorry it arrived damaged. Please keep the packaging until we are in touch.",
        "How can we reach you? (email or phone)",
    ]
    [(_, tools)] = model.requests
    assert set(tools[0]["function"]["parameters"]["properties"]) == {"problem"}  # only what is missing


async def test_a_model_answer_in_words_is_the_reply_and_the_step_stays() -> None:
    ticket_flow.use_model(Model(ModelTurn("Sorry to hear that! What happened to it?", [])))
    chat = Chat(ticket_flow)
    await chat.say("A-2001")
    assert await chat.say("hmm") == ["Sorry to hear that! What happened to it?"]
    assert (await chat.state()).step == "problem"


async def test_a_refused_model_value_is_asked_again_with_its_message() -> None:
    ticket_flow.use_model(Model(fill(problem="bad", category="lost in space")))
    chat = Chat(ticket_flow)
    await chat.say("A-2001")
    [reask] = await chat.say("something odd")
    assert reask.startswith("That is not a valid what went wrong, in a sentence: string should have at least 5")
    assert "That is not a valid kind of problem: input should be 'damaged', 'missing', 'late' or 'other'." in reask
    assert reask.endswith("What went wrong with order A-2001?")


async def test_a_flow_without_free_text_makes_no_model_request() -> None:
    async with FakeOpenAI(api_key="sk-unit") as fake:
        flow = Flow("trip", schema=Trip, model="gpt-4o-mini", steps=trip_flow().steps.values())  # type: ignore[arg-type]
        flow.configure(base_url=f"{fake.base_url}/v1", api_key="sk-unit", default_model=None)
        chat = Chat(flow)
        for text in ("hi", "plane", "0", "12"):
            await chat.say(text)
        assert (await chat.state()).done
        assert fake.requests == []


def test_a_flow_without_free_text_loads_without_a_model() -> None:
    trip_flow().configure(base_url=None, api_key=None, default_model=None)  # no "has no model" error


async def test_a_redelivered_turn_sends_the_same_replies_and_does_not_advance() -> None:
    model = Model(fill(problem="The parcel never arrived", category="missing"))
    ticket_flow.use_model(model)
    chat = Chat(ticket_flow)
    await chat.say("A-1042")
    first = chat.ctx("it never showed up", ids=["e-problem"])
    await ticket_flow.on_event(first, first.event)
    before = await chat.state()
    again = chat.ctx("it never showed up", ids=["e-problem"])  # the consumer died before the done marker
    await ticket_flow.on_event(again, again.event)
    assert [(m.id, m.text) for m in again.outbox] == [(m.id, m.text) for m in first.outbox]
    assert await chat.state() == before
    assert len(model.requests) == 1
    assert again.usage == Usage()


async def test_a_redelivered_event_regrouped_with_a_newer_one_applies_only_the_newer() -> None:
    chat = Chat(trip_flow())
    await chat.say("hi", ids=["e1"])
    await chat.say("plane", ids=["e2"])
    replies = await chat.say("plane", "12", ids=["e2", "e3"])
    assert replies == ["Which seat?", "Seat 12 on a plane. Bye!"]
    assert (await chat.state()).data == {"kind": "plane", "seat": 12}


async def test_two_turns_on_one_version_cannot_both_save() -> None:
    store = MemoryStore("unit")
    chat = Chat(trip_flow(), store)
    await chat.say("hi")
    saved = await chat.state()  # a zombie consumer read this version, then ...
    await chat.say("plane")  # ... another consumer saved the next one first
    with pytest.raises(FlowConflict):
        await flow_state.save(store, "ticket", KEY, saved.after(["zombie"], ["Which seat?"]), ttl=None)
    assert (await chat.state()).events == ["e2"]
    await flow_state.save(store, "ticket", KEY, await chat.state(), ttl=None)  # its own version again: fine


def test_state_round_trips_through_json() -> None:
    s = FlowState(v=3, step="contact", asked=True, data={"order_number": "A-1042"}, attempts=2)
    s = s.after(["e9"], ["How can we reach you?"])
    assert FlowState.from_json(s.to_json()) == s
    assert s.v == 4
    assert FlowState.from_json('{"v": 1, "step": "x", "later_field": true}') == FlowState(v=1, step="x")
    assert FlowState.from_json(None) == FlowState()


def test_instructions_render_must_must_not_should() -> None:
    rendered = Instructions("You take tickets.", must=["be exact"], must_not=["guess"], should=["be kind"]).render()
    assert rendered == "You take tickets.\n\nYou MUST:\n- be exact\n\nYou MUST NOT:\n- guess\n\nYou SHOULD:\n- be kind"
    assert Instructions(must=["a"]).render() == "You MUST:\n- a"
    assert Instructions.of("plain").render() == "plain"


def test_fill_slots_tool_and_system_prompt() -> None:
    step = ticket_flow.steps["problem"]
    tool = slots_tool(step, ["problem", "category"])
    params = tool["function"]["parameters"]
    assert tool["function"]["name"] == "fill_slots"
    assert params["properties"]["category"]["enum"] == ["damaged", "missing", "late", "other"]
    assert "required" not in params
    assert params["additionalProperties"] is False
    prompt = system_prompt("Be brief.", step, {"order_number": "A-1"}, ["problem"])
    assert prompt.startswith("Be brief.\n\n")
    assert '"order_number": "A-1"' in prompt
    assert "problem (what went wrong, in a sentence)" in prompt


def test_a_flow_defined_wrong_says_what_is_wrong() -> None:
    with pytest.raises(FlowError, match="no field nope"):
        Flow("x", schema=Trip, steps=[Step("a", collect=["nope"])])
    with pytest.raises(FlowError, match="goes to 'b'"):
        Flow("x", steps=[Step("a", next="b")])
    with pytest.raises(FlowError, match="unique"):
        Flow("x", steps=[Step("a"), Step("a")])
    with pytest.raises(FlowError, match="no schema"):
        Flow("x", steps=[Step("a", collect=["f"])])


async def test_a_branch_to_an_unknown_step_fails_the_turn() -> None:
    flow = Flow("x", schema=Trip, steps=[Step("kind", collect=["kind"], branch=lambda d: "nowhere")])
    with pytest.raises(FlowError, match="'nowhere'"):
        await Chat(flow).say("train")


async def test_an_agent_with_a_flow_uses_its_instructions_and_model() -> None:
    model = Model(fill(problem="It never came", category="missing"))
    agent = Agent("support", instructions="You are Acme's assistant.", model=model, flow=ticket_flow)
    chat = Chat(agent)
    await chat.say("A-1042")
    assert await chat.say("never came") == ["How can we reach you? (email or phone)"]
    [(messages, _)] = model.requests
    assert messages[0]["content"].startswith("You are Acme's assistant.\n\nYou take support tickets for Acme.")


async def test_a_value_the_model_fills_validly_replaces_a_refused_typed_one() -> None:
    model = Model(fill(seat=12))
    flow = Flow("s", schema=Trip, model=model, steps=[Step("seat", collect=["seat"], prompt="Seat?", free_text=True)])
    chat = Chat(flow)
    assert await chat.say("row 999 is full, give me seat twelve") == []
    assert (await chat.state()).data == {"seat": 12}


#: The ticket flow's steps in a flow no other test gives a model (loaded by import path below).
UNCONFIGURED = Flow("ticket", schema=Ticket, steps=list(ticket_flow.steps.values()))


def test_gateway_toml_loads_a_flow_and_says_when_its_free_text_has_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.registry import agents_and_problems
    from gateway.core.config import AgentConfig, GatewayFile
    from gateway.core.settings import Settings

    file = GatewayFile(agents={"ticket": AgentConfig(path="tests.unit.test_flows:UNCONFIGURED")})
    _, problems = agents_and_problems(Settings(), file)
    assert [p for p in problems if "ticket" in p] == [
        "agent 'ticket': agent 'ticket' has no model: pass model=... or set GATEWAY_LLM_MODEL"
    ]
    monkeypatch.setenv("GATEWAY_LLM_MODEL", "gpt-4o-mini")
    assert agents_and_problems(Settings(), file)[1] == []
    with_provider = GatewayFile(agents={"ticket": AgentConfig(path="examples.ticket_flow:flow", model="gpt-4o")})
    loaded, problems = agents_and_problems(Settings(), with_provider)
    assert problems == []
    assert loaded["ticket"].instance() is ticket_flow
