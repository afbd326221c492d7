"""Outbound pacing per Slack channel: replies to one busy channel are spread out, not burst."""

from __future__ import annotations

import itertools

import pytest

from gateway.core import samples
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.signing import slack_headers

pytestmark = pytest.mark.e2e


async def test_replies_to_one_channel_are_paced(slack: FakeSlack, telegram: FakeTelegram) -> None:
    env = gateway_env(slack, telegram, GATEWAY_SLACK_CHANNEL_RATE="4", GATEWAY_SLACK_CHANNEL_BURST="1")
    gw = await GatewayProcess("dev", env).start()
    try:
        for i in range(5):
            body = samples.slack_message(f"busy {i}", channel="CPACE", ts=f"1700300000.{i:06d}")
            assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200
        other = samples.slack_message("quiet channel", channel="CQUIET")
        assert await post(f"{gw.url}/slack/events", other, slack_headers(SLACK_SECRET, other)) == 200
        await slack.wait_for_messages(6)
    finally:
        assert await gw.terminate() == 0
    paced = [c for c in slack.calls_for("chat.postMessage") if c.args["channel"] == "CPACE"]
    assert [c.args["text"] for c in paced] == [f"echo: busy {i}" for i in range(5)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(paced)]
    assert min(gaps) >= 0.2  # 4 per second with no burst: at least ~0.25 s apart
    quiet = next(c for c in slack.calls_for("chat.postMessage") if c.args["channel"] == "CQUIET")
    assert quiet.at < paced[-1].at  # another channel is not held up behind the busy one
