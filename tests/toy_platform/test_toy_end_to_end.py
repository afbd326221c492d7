"""The toy platform end to end, registered by one line (GATEWAY_PLATFORMS): `gateway dev` on the real RabbitMQ
and Redis verifies its webhook, queues it before 200, the echo agent answers through the toy sender to the fake
API, a retried delivery is answered once, and a forged signature is refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.toy_platform.fake import FakeToy
from tests.toy_platform.platform import sign

pytestmark = pytest.mark.e2e
SECRET = "toy-secret-0123456789abcdefghijklmnop"


@pytest.fixture
async def toy() -> AsyncIterator[FakeToy]:
    async with FakeToy(token="toy-token") as fake:
        yield fake


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"X-Toy-Timestamp": ts, "X-Toy-Signature": sign(secret, ts, body), "Content-Type": "application/json"}


async def test_a_platform_in_its_own_folder_answers_through_the_spine(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, toy: FakeToy
) -> None:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services),
        GATEWAY_PLATFORMS="tests.toy_platform.platform:PLATFORM",
        TOY_SECRET=SECRET,
        TOY_API_URL=toy.root_url,
        TOY_TOKEN="toy-token",
    )
    gw = await GatewayProcess("dev", env).start()
    try:
        first = json.dumps({"id": "m1", "chat": "room-1", "user": "ann", "text": "hi toy"}).encode()
        assert await post(f"{gw.url}/toy/main", first, signed(first)) == 200
        assert await post(f"{gw.url}/toy/main", first, signed(first)) == 200  # the platform retried
        assert await post(f"{gw.url}/toy/main", first, signed(first, "wrong-secret")) == 401
        assert await post(f"{gw.url}/toy/other", first, signed(first)) == 404  # not a configured bot
        second = json.dumps({"id": "m2", "chat": "room-1", "user": "ann", "text": "again"}).encode()
        assert await post(f"{gw.url}/toy/main", second, signed(second)) == 200
        sent = await toy.wait_for(2)
    finally:
        assert await gw.terminate() == 0
    assert [(m["chat"], m["text"]) for m in sent] == [("room-1", "echo: hi toy"), ("room-1", "echo: again")]
    assert len(toy.sent) == 2  # the retried delivery was answered once
