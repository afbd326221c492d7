"""Interrupt and stop end to end on RabbitMQ and Redis through the fake platforms and the real clients.

- ``busy = "interrupt"``: messages sent during a slow turn stop it; its partial reply ends with the marker;
  the later messages are answered in order; nothing is lost; ``gateway history`` says ``interrupted``.
- A stop word sent to ``gateway serve`` stops the turn running on one of two ``gateway consume`` processes
  (the stop signal crosses processes); the stop itself starts no turn; the next message is answered.
- A streamed answer that is stopped ends, as the same Slack message, with the marker; in Telegram the typing
  indicator repeats until the first streamed words show, and not after.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.core import samples
from tests.e2e.conftest import SLACK_SECRET, TELEGRAM_SECRET, gateway_env
from tests.e2e.test_operators import gateway_cli
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
CONFIG = """
[agents.thinker]
path = "tests.e2e.thinking_agent:agent"

[[routes]]
platform = "telegram"
channel = "4343"
agent = "thinker"
busy = "interrupt"

[[routes]]
platform = "telegram"
channel = "4444"
agent = "thinker"
stop_words = ["stop", "halt"]
"""


async def say(gw: GatewayProcess, text: str, *, chat: int, update: int) -> None:
    body = samples.telegram_message(text, chat_id=chat, update_id=update)
    assert await post(f"{gw.url}/telegram/default", body, HEADERS) == 200


async def typing_shown(telegram: FakeTelegram, chat: int, n: int = 1) -> None:
    await telegram.wait_until(
        lambda: sum(1 for c in telegram.calls_for("sendChatAction") if str(c.args["chat_id"]) == str(chat)) >= n,
        timeout=20,
        describe=f"{n} typing indicator(s) in chat {chat}",
    )


def texts(telegram: FakeTelegram, chat: int) -> list[str]:
    return [m["text"] for m in telegram.messages if str(m["chat_id"]) == str(chat)]


async def test_messages_during_a_slow_turn_interrupt_it_and_are_answered_in_order(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(slack, telegram, **service_env(services, config=CONFIG, tmp_path=tmp_path))
    gw = await GatewayProcess("dev", env).start()
    try:
        await say(gw, "slow question", chat=4343, update=8001)
        await typing_shown(telegram, 4343)
        await say(gw, "second", chat=4343, update=8002)
        await say(gw, "third", chat=4343, update=8003)
        await telegram.wait_for_messages(5, timeout=20)
        code, out, err = await gateway_cli(gw.env, "history", "telegram:default:4343", "--json")
        _, text, _ = await gateway_cli(gw.env, "history", "telegram:default:4343")
    finally:
        assert await gw.terminate() == 0
    assert texts(telegram, 4343) == [
        "thinking about slow question …(stopped)",
        "thinking about second",
        "answer: second",
        "thinking about third",
        "answer: third",
    ]
    assert code == 0, err
    turns = json.loads(out)["agents"]["thinker"]["turns"]
    assert [(t["role"], t["text"], t["interrupted"]) for t in turns][:2] == [
        ("user", "slow question", "new message"),
        ("assistant", "thinking about slow question …(stopped)", "new message"),
    ]
    assert all(t["interrupted"] is None for t in turns[2:])
    assert "(interrupted: new message)" in text
    assert "turn_failed" not in gw.logs()


@pytest.fixture
async def split_cluster(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, list[GatewayProcess]]]:
    """``gateway serve`` and two ``gateway consume`` that share the partitions."""
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config=CONFIG, tmp_path=tmp_path),
        GATEWAY_PARTITIONS="4",
        GATEWAY_LEASE_TTL="2",
    )
    serve = await GatewayProcess("serve", env).start()
    consumers: list[GatewayProcess] = []
    try:
        for i in range(2):
            consumers.append(
                await GatewayProcess("consume", {**env, "GATEWAY_CONSUMER_ID": f"c{i}"}, name=f"consume-{i}").start()
            )
        await eventually(lambda: owned(consumers), until=lambda n: n == [2, 2], timeout=30, what="two partitions each")
        yield serve, consumers
    finally:
        for proc in [serve, *consumers]:
            await proc.terminate()


def cancelled_after(consumers: list[GatewayProcess], since: float) -> float:
    """Milliseconds from ``since`` (Unix time) to the consumer's ``stop_signal_acted`` log line."""
    for c in consumers:
        for line in c.logs().splitlines():
            if '"stop_signal_acted"' in line:
                at = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00"))
                return (at.timestamp() - since) * 1000
    return float("nan")


async def owned(consumers: list[GatewayProcess]) -> list[int]:
    found = []
    async with aiohttp.ClientSession() as s:
        for c in consumers:
            async with s.get(f"{c.url}/metrics") as r:
                line = next(x for x in (await r.text()).splitlines() if x.startswith("gateway_partitions_owned "))
                found.append(int(float(line.split()[1])))
    return found


async def test_a_stop_word_stops_the_turn_running_on_another_consume_process(
    split_cluster: tuple[GatewayProcess, list[GatewayProcess]],
    telegram: FakeTelegram,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve, consumers = split_cluster
    await say(serve, "slow job", chat=4444, update=8101)
    await typing_shown(telegram, 4444)
    start, sent_at = time.monotonic(), time.time()
    await say(serve, "Stop!", chat=4444, update=8102)
    await telegram.wait_until(lambda: len(texts(telegram, 4444)) == 1, timeout=20, describe="the stopped reply")
    replied = (time.monotonic() - start) * 1000
    with capsys.disabled():  # measured, not asserted: the stop word's POST to the agent's cancellation, and to
        # the stopped reply at the fake (which includes the test agent's 0.5 s of tidying up)
        print(
            f"\n[stop] across processes: cancelled {cancelled_after(consumers, sent_at):.0f} ms, reply {replied:.0f} ms"
        )
    await say(serve, "after", chat=4444, update=8103)
    await telegram.wait_until(lambda: len(texts(telegram, 4444)) == 3, timeout=20, describe="the next answer")
    assert texts(telegram, 4444) == ["thinking about slow job …(stopped)", "thinking about after", "answer: after"]
    code, out, err = await gateway_cli(serve.env, "history", "telegram:default:4444", "--json")
    assert code == 0, err
    turns = json.loads(out)["agents"]["thinker"]["turns"]
    assert [(t["text"], t["interrupted"]) for t in turns] == [
        ("slow job", "stop word"),
        ("thinking about slow job …(stopped)", "stop word"),
        ("after", None),
        ("thinking about after", None),
        ("answer: after", None),
    ]  # the stop word is no turn of its own
    stopped_in = [c.name for c in consumers if '"turn_interrupted"' in c.logs()]
    assert len(stopped_in) == 1, stopped_in  # the owner of the conversation's partition, not the ingress
    # ... and it acted on the pub/sub signal from `serve`, not only on the queued copy of the stop
    assert [c.name for c in consumers if '"stop_signal_acted"' in c.logs()] == stopped_in
    assert '"turn_interrupted"' not in serve.logs()


STREAM_CONFIG = """
[agents.streamer]
path = "tests.e2e.streaming_thinker:agent"

[[routes]]
platform = "slack"
channel = "C0STREAM"
agent = "streamer"
stream = true
stop_words = ["stop"]

[[routes]]
platform = "telegram"
channel = "4646"
agent = "streamer"
stream = true
"""


async def slack_say(gw: GatewayProcess, text: str, *, thread: str, ts: str) -> None:
    body = samples.slack_message(text, channel="C0STREAM", thread_ts=thread, ts=ts, team="T0DEV")
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


async def test_a_stopped_stream_ends_with_the_marker_in_the_same_message(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(slack, telegram, **service_env(services, config=STREAM_CONFIG, tmp_path=tmp_path))
    gw = await GatewayProcess("dev", env).start()
    thread = "1700000500.000001"
    try:
        await slack_say(gw, "slow essay", thread=thread, ts=thread)
        await slack.wait_until(
            lambda: any("partial answer" in t for t in slack.screen("C0STREAM").values()),
            timeout=20,
            describe="the first streamed words",
        )
        await slack_say(gw, "stop", thread=thread, ts="1700000500.000002")
        await slack.wait_until(
            lambda: any(t.endswith("…(stopped)") for t in slack.screen("C0STREAM").values()),
            timeout=20,
            describe="the stream closed with the marker",
        )
        code, out, err = await gateway_cli(gw.env, "history", f"slack:T0DEV:C0STREAM:{thread}", "--json")
    finally:
        assert await gw.terminate() == 0
    [answer] = slack.created("C0STREAM", thread)  # one message: the stream, not a second post with the marker
    assert slack.screen("C0STREAM")[answer["ts"]] == "partial answer to slow essay …(stopped)"
    assert slack.steps("C0STREAM", answer["ts"])[-1].final
    assert code == 0, err
    turns = json.loads(out)["agents"]["streamer"]["turns"]
    assert [(t["text"], t["interrupted"]) for t in turns] == [
        ("slow essay", "stop word"),
        ("partial answer to slow essay …(stopped)", "stop word"),
    ]


async def test_typing_repeats_until_the_first_streamed_words_and_stops_there(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config=STREAM_CONFIG, tmp_path=tmp_path),
        GATEWAY_TYPING_EVERY="0.25",
        THINK_SECONDS="2",
    )
    gw = await GatewayProcess("dev", env).start()
    try:
        await say(gw, "write", chat=4646, update=8201)
        await telegram.wait_until(
            lambda: (
                any(t.endswith("and the rest.") for t in telegram.screen(4646).values())
                and len(texts(telegram, 4646)) == 1
            ),
            timeout=20,
            describe="the final answer",
        )
    finally:
        assert await gw.terminate() == 0
    first_words = min(s.at for s in telegram.timeline if s.chat == "4646")
    typing = [c.at for c in telegram.calls_for("sendChatAction") if str(c.args["chat_id"]) == "4646"]
    assert len(typing) >= 2, typing  # from the first second until the words showed, every quarter second
    late = [round(t - first_words, 3) for t in typing if t > first_words + 0.1]  # one may be in flight
    assert late == [], late  # two more seconds of writing: no typing once text shows
