"""Slack across workspaces, end to end on RabbitMQ and Redis: two workspaces installed through
``/slack/install`` → Slack's authorize page (the fake) → ``/slack/oauth_redirect``; each reply goes out with its
own workspace's token (the fake refuses a token in another workspace's channel); an uninstalled workspace's
replies are dead-lettered with the reason; a rotating token is refreshed once by two consumers racing; forged,
absent and replayed states are refused (never a 500)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from consumers.leases import lease_key
from gateway.core import samples
from gateway.core.bus.amqp import AmqpBus
from gateway.core.bus.topology import Topology
from gateway.core.store.redis import RedisStore
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, free_port, post, serve_and_consumers
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PARTITIONS = 4


def oauth_env(services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, port: int) -> dict[str, str]:
    amqp, redis, namespace = services
    slack.workspaces.add("TA", "Team A", ["CA1"])
    slack.workspaces.add("TB", "Team B", ["CB1"])
    return gateway_env(
        slack,
        telegram,
        amqp=amqp,
        redis=redis,
        namespace=namespace,
        GATEWAY_PORT=str(port),
        GATEWAY_PARTITIONS=str(PARTITIONS),
        GATEWAY_SEND_ATTEMPTS="2",
        SLACK_CLIENT_ID=slack.workspaces.client_id,
        SLACK_CLIENT_SECRET=slack.workspaces.client_secret,
        GATEWAY_TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SLACK_AUTHORIZE_URL=f"{slack.root_url}/oauth/v2/authorize",
        SLACK_REDIRECT_URI=f"http://127.0.0.1:{port}/slack/oauth_redirect",
    )


@pytest.fixture
async def gateway(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> AsyncIterator[GatewayProcess]:
    proc = await GatewayProcess("dev", oauth_env(services, slack, telegram, free_port())).start()
    try:
        yield proc
    finally:
        assert await proc.terminate() == 0, proc.logs()[-2000:]


def slack_root(gw: GatewayProcess) -> str:
    return gw.env["SLACK_AUTHORIZE_URL"].removesuffix("/oauth/v2/authorize")


async def install(gw: GatewayProcess, team: str) -> tuple[str, str]:
    """The browser's way through the flow; returns the redirect URL it came back with and its state cookie."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.url}/slack/install", params={"team": team}, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            to_slack = r.headers["Location"]
            cookie = r.headers["Set-Cookie"].split(";")[0]
        query = dict(parse_qsl(urlsplit(to_slack).query))
        assert to_slack.startswith(f"{slack_root(gw)}/oauth/v2/authorize?")
        assert query["client_id"] == "1111.2222"
        assert "chat:write" in query["scope"].split(",")
        assert query["team"] == team
        assert cookie == f"slack-app-oauth-state={query['state']}"
        async with s.get(to_slack, allow_redirects=False) as r:  # Slack's consent page, approved
            assert r.status == 302
            back = r.headers["Location"]
        assert back.startswith(f"{gw.url}/slack/oauth_redirect?")
        async with s.get(back, headers={"Cookie": cookie}, allow_redirects=False) as r:
            assert r.status == 200, await r.text()
            assert "installed" in (await r.text()).lower()
    return back, cookie


async def say(gw: GatewayProcess, text: str, *, team: str, channel: str, ts: str) -> None:
    body = samples.slack_message(text, team=team, channel=channel, ts=ts)
    assert await post(f"{gw.url}/slack/events", body, slack_headers(SLACK_SECRET, body)) == 200


def posted(slack: FakeSlack, channel: str) -> list[tuple[str, dict[str, Any]]]:
    return [(token, args) for token, args in slack.posts if args["channel"] == channel]


async def test_each_workspace_is_answered_with_its_own_token(
    gateway: GatewayProcess, slack: FakeSlack, services: tuple[str, str, str]
) -> None:
    await install(gateway, "TA")
    await install(gateway, "TB")
    (token_a,), (token_b,) = slack.workspaces.tokens_of("TA"), slack.workspaces.tokens_of("TB")
    assert token_a != token_b
    await say(gateway, "hello from B", team="TB", channel="CB1", ts="1700001000.000001")
    await say(gateway, "hello from A", team="TA", channel="CA1", ts="1700001000.000002")
    await say(gateway, "hello from a workspace never installed", team="T0", channel="C0", ts="1700001000.000003")
    await slack.wait_for_messages(3, timeout=20)
    assert [(t, a["text"]) for t, a in posted(slack, "CB1")] == [(token_b, "echo: hello from B")]
    assert [(t, a["text"]) for t, a in posted(slack, "CA1")] == [(token_a, "echo: hello from A")]
    assert [t for t, _ in posted(slack, "C0")] == ["xoxb-e2e"]  # SLACK_BOT_TOKEN, as before
    # Team A's token in team B's channel is refused, as Slack refuses it: the fake checks what the sender chose.
    async with aiohttp.ClientSession() as s:
        answer = await (
            await s.post(
                f"{slack.base_url}chat.postMessage",
                json={"channel": "CB1", "text": "x"},
                headers={"Authorization": f"Bearer {token_a}"},
            )
        ).json()
    assert answer == {"ok": False, "error": "channel_not_found"}
    # At rest in Redis the tokens are sealed.
    _, redis_url, namespace = services
    r = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in r.scan_iter(f"{namespace}:slack:install:*")]
        assert len(keys) == 2
        for key in keys:
            raw = await r.get(key)
            assert raw is not None
            assert b"xoxb" not in raw
    finally:
        await r.aclose()


async def test_forged_absent_and_replayed_states_are_refused(gateway: GatewayProcess, slack: FakeSlack) -> None:
    back, cookie = await install(gateway, "TA")
    redirect = f"{gateway.url}/slack/oauth_redirect"
    async with aiohttp.ClientSession() as s:

        async def status(url: str, **headers: str) -> int:
            async with s.get(url, headers=headers, allow_redirects=False) as r:
                await r.read()
                return r.status

        assert await status(back, Cookie=cookie) == 403  # the same state again: used
        assert await status(f"{redirect}?code=abc&state=forged", Cookie="slack-app-oauth-state=forged") == 403
        assert await status(f"{redirect}?code=abc") == 400  # no state, no cookie
        assert await status(f"{redirect}?code=abc&state=x") == 400  # a state this browser never got
        assert await status(f"{redirect}?error=access_denied&state=x") == 403  # declined on Slack's page
        assert await status(
            f"{redirect}?code=abc&state={'x' * 5000}", Cookie=f"slack-app-oauth-state={'x' * 5000}"
        ) in (
            400,
            403,
        )
        # A fresh state with a code Slack never issued: refused by oauth.v2.access, answered 400, not 500.
        async with s.get(f"{gateway.url}/slack/install", allow_redirects=False) as r:
            state = dict(parse_qsl(urlsplit(r.headers["Location"]).query))["state"]
        assert await status(f"{redirect}?code=bogus&state={state}", Cookie=f"slack-app-oauth-state={state}") == 400
    assert len(slack.workspaces.tokens_of("TA")) == 1  # nothing above installed anything


async def test_after_app_uninstalled_replies_dead_letter_with_the_reason(
    gateway: GatewayProcess, slack: FakeSlack, services: tuple[str, str, str]
) -> None:
    await install(gateway, "TA")
    await say(gateway, "before", team="TA", channel="CA1", ts="1700002000.000001")
    await slack.wait_for_messages(1, timeout=20)
    uninstalled = json.dumps(
        {
            "token": "unused",
            "team_id": "TA",
            "api_app_id": "A0FAKEAPP",
            "event": {"type": "app_uninstalled"},
            "type": "event_callback",
            "event_id": "EvUNINSTALL1",
            "event_time": int(time.time()) + 1,
        }
    ).encode()
    assert await post(f"{gateway.url}/slack/events", uninstalled, slack_headers(SLACK_SECRET, uninstalled)) == 200
    slack.workspaces.revoke("TA")  # what Slack does to the tokens
    amqp, _, namespace = services
    bus = AmqpBus(amqp, Topology(namespace, PARTITIONS))
    await bus.start()
    try:
        await say(gateway, "after", team="TA", channel="CA1", ts="1700002000.000002")
        dead = await eventually(lambda: bus.get(bus.topology.dead_queue), timeout=30, what="a dead letter")
        assert dead is not None
        await dead.ack()
    finally:
        await bus.close()
    assert dead.headers["x-stage"] == "outbound"
    assert dead.headers["x-reason"] == "send_failed"
    assert "TA: the app was uninstalled (app_uninstalled)" in dead.headers["x-error"]
    assert json.loads(dead.body)["text"] == "echo: after"
    assert [a["text"] for _, a in posted(slack, "CA1")] == ["echo: before"]
    assert slack.calls_for("chat.postMessage")[-1].args["text"] == "echo: before"  # never even tried


async def test_two_consumers_refresh_a_rotating_token_once(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    slack.workspaces.rotating = True
    slack.workspaces.expires_in = 100  # the installed token expires inside the 2 h refresh margin
    port = free_port()
    env = oauth_env(services, slack, telegram, port)
    _, redis, namespace = services
    store = RedisStore(redis, namespace)
    try:
        async with serve_and_consumers(env) as (serve, consumers):
            await eventually(
                lambda: store.lease_owners([lease_key(p) for p in range(PARTITIONS)]),
                until=lambda o: sorted(map(str, o)) == ["c0", "c0", "c1", "c1"],
                timeout=20,
                what="both consumers owning partitions",
            )
            await install(serve, "TA")
            (installed,) = slack.workspaces.tokens_of("TA")
            slack.workspaces.expires_in = 43200  # the refreshed token is good for 12 h
            slack.delay_next(1.0, method="oauth.v2.access")  # a slow refresh: the other consumer must wait for it
            n = 12
            for i in range(n):  # threads spread over both consumers' partitions
                await say(serve, f"m{i}", team="TA", channel="CA1", ts=f"1700003000.{i:06d}")
            await slack.wait_for_messages(n, timeout=30)
            assert slack.workspaces.refreshes == 1
            tokens = {t for t, _ in posted(slack, "CA1")}
            assert len(tokens) == 1
            assert tokens != {installed}
            assert next(iter(tokens)).startswith("xoxe.xoxb-")
            senders = [c for c in consumers if '"outbound_sent"' in c.logs()]
            assert len(senders) == 2, "both consumers sent replies (so both needed the token)"
            assert sum(c.logs().count('"slack_token_refreshed"') for c in consumers) == 1
    finally:
        await store.close()
