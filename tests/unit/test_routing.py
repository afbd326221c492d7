"""Conversation keys by granularity, and first-match-wins routes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.config import RouteConfig
from gateway.core.events import Event, EventKind, ReplyAddress
from gateway.core.routing import Route, Router, conversation_key

SLACK = ReplyAddress(platform="slack", bot="T111", channel="C111", thread="1.000", message="2.000", user="W222")
TELEGRAM_TOPIC = ReplyAddress(platform="telegram", bot="default", channel="-100", thread="23", message="7", user="42")
TELEGRAM_DM = ReplyAddress(platform="telegram", bot="default", channel="42", message="7", user="42")
WEBHOOK = ReplyAddress(platform="webhook", bot="shop", channel="cus_1", user="cus_1")


@pytest.mark.parametrize(
    ("address", "granularity", "key"),
    [
        (SLACK, "thread", "slack:T111:C111:1.000"),
        (SLACK, "channel", "slack:T111:C111"),
        (SLACK, "user", "slack:T111:user:W222"),
        (TELEGRAM_TOPIC, "thread", "telegram:default:-100:23"),
        (TELEGRAM_TOPIC, "channel", "telegram:default:-100"),
        (TELEGRAM_TOPIC, "user", "telegram:default:user:42"),
        (TELEGRAM_DM, "thread", "telegram:default:42"),
        (WEBHOOK, "thread", "webhook:shop:cus_1"),
        (WEBHOOK, "customer", "webhook:shop:cus_1"),
    ],
)
def test_conversation_key(address: ReplyAddress, granularity: Any, key: str) -> None:
    assert conversation_key(address, granularity) == key


def test_thread_is_the_default_granularity() -> None:
    assert conversation_key(SLACK) == "slack:T111:C111:1.000"


def test_user_granularity_without_a_user_falls_back_to_the_channel() -> None:
    address = SLACK.model_copy(update={"user": None})
    assert conversation_key(address, "user") == "slack:T111:C111"


def test_keys_of_different_bots_never_collide() -> None:
    other = SLACK.model_copy(update={"bot": "T222"})
    assert conversation_key(SLACK) != conversation_key(other)


def routes(*specs: dict[str, Any]) -> list[RouteConfig]:
    return [RouteConfig(**s) for s in specs]


def test_no_routes_means_the_default_agent_with_thread_keys() -> None:
    router = Router([], "echo")
    assert router.route_for(SLACK) == Route(agent="echo", key="thread", busy="queue")


def test_first_matching_route_wins() -> None:
    router = Router(
        routes(
            {"platform": "slack", "channel": "C111", "agent": "support", "key": "channel"},
            {"platform": "slack", "agent": "general"},
        ),
        "echo",
    )
    assert router.route_for(SLACK).agent == "support"
    assert router.route_for(SLACK.model_copy(update={"channel": "C999"})).agent == "general"


def test_routes_match_on_platform() -> None:
    router = Router(routes({"platform": "telegram", "agent": "tg"}), "echo")
    assert router.route_for(TELEGRAM_DM).agent == "tg"
    assert router.route_for(SLACK).agent == "echo"
    assert router.route_for(WEBHOOK).agent == "echo"


def test_routes_match_on_bot() -> None:
    router = Router(routes({"platform": "telegram", "bot": "support", "agent": "helpdesk"}), "echo")
    assert router.route_for(TELEGRAM_DM).agent == "echo"
    assert router.route_for(TELEGRAM_DM.model_copy(update={"bot": "support"})).agent == "helpdesk"


def test_routes_match_on_channel() -> None:
    router = Router(routes({"platform": "webhook", "bot": "shop", "channel": "cus_vip", "agent": "vip"}), "echo")
    assert router.route_for(WEBHOOK).agent == "echo"
    assert router.route_for(WEBHOOK.model_copy(update={"channel": "cus_vip"})).agent == "vip"


def test_a_route_without_agent_uses_the_default_agent() -> None:
    router = Router(routes({"platform": "slack", "key": "channel", "busy": "collect"}), "llm")
    assert router.route_for(SLACK) == Route(agent="llm", key="channel", busy="collect")


def event(address: ReplyAddress = SLACK, **kw: Any) -> Event:
    return Event(
        platform=address.platform,
        delivery_id="Ev1",
        kind=EventKind.MESSAGE,
        conversation_key=conversation_key(address),
        reply_to=address,
        text="hi",
        **kw,
    )


def test_apply_sets_agent_busy_and_key() -> None:
    router = Router(
        routes({"platform": "slack", "channel": "C111", "agent": "support", "key": "channel", "busy": "collect"}),
        "echo",
    )
    original = event()
    routed = router.apply(original)
    assert routed.agent == "support"
    assert routed.busy == "collect"
    assert routed.conversation_key == "slack:T111:C111"
    assert routed.id == original.id
    assert routed.text == original.text
    assert original.agent is None  # events are frozen: apply returns a copy
    assert original.conversation_key == "slack:T111:C111:1.000"


def test_apply_with_the_default_route_keeps_the_key_and_sets_the_agent() -> None:
    routed = Router([], "echo").apply(event())
    assert routed.agent == "echo"
    assert routed.busy == "queue"
    assert routed.conversation_key == "slack:T111:C111:1.000"


def test_apply_is_idempotent() -> None:
    router = Router(routes({"platform": "slack", "agent": "support", "key": "user"}), "echo")
    once = router.apply(event())
    assert router.apply(once) == once
    assert once.conversation_key == "slack:T111:user:W222"
