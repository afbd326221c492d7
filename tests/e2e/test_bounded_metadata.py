"""One request never hurts another: over-long identifiers are refused alone, the shared connection stays up."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.core import samples
from gateway.core.bounds import MAX_KEY
from tests.e2e.conftest import SLACK_SECRET, WEBHOOK_SECRET, gateway_env
from tests.e2e.test_ingress import read_back
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers, webhook_headers

pytestmark = pytest.mark.e2e
HUGE = "c" * 300_000  # under the 1 MiB body limit, far over an AMQP header frame (128 KiB)


async def test_oversized_identifiers_among_normal_requests_leave_every_normal_one_200(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    amqp, _, namespace = services
    shop = '[webhooks.sources.shop]\nsecret_env = "SHOP_SECRET"\ncustomer_pointer = "/customer_id"\n'
    env = gateway_env(
        slack, telegram, **service_env(services, config=shop, tmp_path=tmp_path), SHOP_SECRET=WEBHOOK_SECRET
    )
    serve = await GatewayProcess("serve", env).start()
    try:
        url = serve.url

        async def webhook(customer: str, n: int) -> int:
            body = samples.webhook_payload(f"m{n}", customer=customer)
            return await post(f"{url}/webhooks/shop", body, webhook_headers(WEBHOOK_SECRET, body, msg_id=f"msg_{n}"))

        async def slack_event(channel: str, n: int) -> int:
            body = samples.slack_message(f"s{n}", channel=channel, event_id=f"EvBIG{n}")
            return await post(f"{url}/slack/events", body, slack_headers(SLACK_SECRET, body))

        normal = [webhook(f"cus_{n}", n) for n in range(60)]
        oversized = [webhook(HUGE + str(n), 100 + n) for n in range(4)] + [slack_event("C" + HUGE, 1)]
        calls = normal + oversized
        order = list(range(len(calls)))
        interleaved = [calls[i] for i in order[::2] + order[1::2]]  # oversized ones mixed in, all at once
        statuses = await asyncio.gather(*interleaved)
        by_call = dict(zip([calls.index(c) for c in interleaved], statuses, strict=True))
        assert [by_call[i] for i in range(60)] == [200] * 60
        assert [by_call[i] for i in range(60, 65)] == [400] * 5
        body = samples.webhook_payload("after", customer="cus_after")
        assert await post(f"{url}/webhooks/shop", body, webhook_headers(WEBHOOK_SECRET, body)) == 200
    finally:
        await serve.terminate()
    logs = serve.logs()
    assert "broker_reconnected" not in logs, "the shared connection was closed"
    assert "frame_too_large" not in logs.lower()
    assert f"the limit is {MAX_KEY}" in logs
    events = await read_back(amqp, namespace)
    assert sorted(e.conversation_key for e in events) == sorted(
        [f"webhook:shop:cus_{n}" for n in range(60)] + ["webhook:shop:cus_after"]
    )


async def test_an_oversized_field_answer_says_which_and_leaks_nothing(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env = gateway_env(slack, telegram, **service_env(services))
    serve = await GatewayProcess("serve", env).start()
    try:
        body = samples.slack_message("x", channel="C" + "9" * 5000, event_id="EvLONG")
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{serve.url}/slack/events", data=body, headers=slack_headers(SLACK_SECRET, body)) as r,
        ):
            status, answer = r.status, json.loads(await r.read())
    finally:
        await serve.terminate()
    assert status == 400
    assert answer["ok"] is False
    assert answer["error"].startswith("the conversation key is ")
    assert answer["error"].endswith(f" characters; the limit is {MAX_KEY}")
    assert "9999" not in answer["error"], "the value itself is not echoed back"
