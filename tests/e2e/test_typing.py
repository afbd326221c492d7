"""While a turn runs, the user sees the bot typing: Telegram's chat action is repeated until the answer goes
out, a quick turn shows none, and the reply is posted once (gateway dev on RabbitMQ and Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import samples
from tests.e2e.conftest import TELEGRAM_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env

pytestmark = pytest.mark.e2e
CONFIG = """
[agents.slow]
path = "tests.e2e.slow_agent:agent"

[[routes]]
platform = "telegram"
channel = "4242"
agent = "slow"
"""


async def test_a_long_turn_shows_typing_until_its_answer_and_a_quick_one_shows_none(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services, config=CONFIG, tmp_path=tmp_path),
        GATEWAY_TYPING_EVERY="0.5",
        SLOW_AGENT_SECONDS="2.5",
    )
    gw = await GatewayProcess("dev", env).start()
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
    try:
        quick = samples.telegram_message("quick", chat_id=1313, update_id=7001)
        assert await post(f"{gw.url}/telegram/default", quick, headers) == 200
        slow = samples.telegram_message("think", chat_id=4242, update_id=7002)
        assert await post(f"{gw.url}/telegram/default", slow, headers) == 200
        messages = await telegram.wait_for_messages(2, timeout=20)
    finally:
        assert await gw.terminate() == 0
    assert sorted((str(m["chat_id"]), m["text"]) for m in messages) == [
        ("1313", "echo: quick"),
        ("4242", "slow: think"),
    ]
    calls = telegram.calls
    typing = [c for c in calls if c.method.lower() == "sendchataction"]
    answer = next(c for c in calls if c.method.lower() == "sendmessage" and str(c.args["chat_id"]) == "4242")
    assert {str(c.args["chat_id"]) for c in typing} == {"4242"}  # the quick turn showed none
    # after the first second, every half second of the 2.5 s turn: about 4; the answer ends them
    assert 2 <= len(typing) <= 6, [round(c.at - answer.at, 2) for c in typing]
    assert all(c.at <= answer.at for c in typing)
    assert all(c.args["action"] == "typing" for c in typing)
