"""The web chat and app API on real RabbitMQ and Redis, through the spine: serve processes, a consumer,
server-sent events and WebSockets, reconnects and kills."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess
from tests.support.services import service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
WEB_SECRET = "e2e-web-secret-0123456789abcdefghij"
APP_KEY = "e2e-app-key-0123456789abcdefghijkl"
CONFIG = '[web.apps.acme]\nkey_env = "ACME_KEY"\n'


class Sse:
    """An SSE reader that collects events in the background."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}
        self.events: list[dict[str, Any]] = []
        self.status = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sse:
        self._task = asyncio.create_task(self._read())
        await eventually(lambda: self.status, timeout=10, what="the SSE response")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        async with aiohttp.ClientSession() as s, s.get(self.url, headers=self.headers, timeout=None) as r:
            self.status = r.status
            event: dict[str, str] = {}
            async for raw in r.content:
                line = raw.decode().rstrip("\n")
                if not line:
                    if event.get("event") == "message":
                        self.events.append({"sse_id": event.get("id"), **json.loads(event["data"])})
                    event = {}
                elif not line.startswith(":") and ":" in line:
                    name, _, value = line.partition(":")
                    event[name] = value.lstrip(" ")

    def texts(self) -> list[str]:
        return [e["text"] for e in self.events]


async def session(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/chat/session") as r:
        assert r.status == 200
        return dict(await r.json())


async def send(url: str, key: str, credential: str, text: str, msg_id: str | None = None) -> tuple[int, Any]:
    body: dict[str, str] = {"text": text}
    if msg_id:
        body["id"] = msg_id
    headers = {"Authorization": f"Bearer {credential}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{url}/v1/conversations/{key}/messages", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


@pytest.fixture
async def web_env(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Any
) -> dict[str, str]:
    env = gateway_env(slack, telegram, **service_env(services, config=CONFIG, tmp_path=tmp_path))
    env.update(GATEWAY_WEB_SECRET=WEB_SECRET, ACME_KEY=APP_KEY)
    return env


async def test_a_reply_reaches_a_visitor_connected_to_another_serve_process(web_env: dict[str, str]) -> None:
    a = await GatewayProcess("serve", web_env, name="serve-a").start()
    b = await GatewayProcess("serve", web_env, name="serve-b").start()
    consume = await GatewayProcess("consume", web_env).start()
    try:
        visitor = await session(a.url)
        key, token = visitor["key"], visitor["token"]
        assert key.startswith("web:default:")
        async with Sse(f"{b.url}/v1/conversations/{key}/events?token={token}") as stream:
            assert stream.status == 200
            status, answer = await send(a.url, key, token, "hello from a", "m1")
            assert (status, answer["id"], answer["duplicate"]) == (202, "m1", False)
            await eventually(stream.texts, until=lambda t: "echo: hello from a" in t, timeout=20, what="the reply")
            assert stream.texts() == ["hello from a", "echo: hello from a"]
            # A retry of the same client message is answered once, and not shown twice.
            status, answer = await send(a.url, key, token, "hello from a", "m1")
            assert (status, answer["duplicate"]) == (202, True)
            status, _ = await send(a.url, key, token, "second", "m2")
            assert status == 202
            await eventually(stream.texts, until=lambda t: "echo: second" in t, timeout=20, what="the 2nd reply")
            first_reply_id = stream.events[1]["id"]
        assert stream.texts() == ["hello from a", "echo: hello from a", "second", "echo: second"]
        assert len({e["id"] for e in stream.events}) == 4
        # A reconnect with Last-Event-ID, to the other process, resumes after that entry: nothing missed.
        headers = {"Last-Event-ID": first_reply_id}
        async with Sse(f"{a.url}/v1/conversations/{key}/events?token={token}", headers) as resumed:
            await eventually(resumed.texts, until=lambda t: len(t) >= 2, timeout=10, what="the resumed entries")
            assert resumed.texts() == ["second", "echo: second"]
    finally:
        for p in (a, b, consume):
            await p.terminate()


async def test_a_reply_produced_while_the_consumer_was_down_arrives_after_it_restarts(
    web_env: dict[str, str],
) -> None:
    serve = await GatewayProcess("serve", web_env).start()
    consume = await GatewayProcess("consume", web_env).start()
    try:
        visitor = await session(serve.url)
        key, token = visitor["key"], visitor["token"]
        async with Sse(f"{serve.url}/v1/conversations/{key}/events?token={token}") as stream:
            await consume.kill()
            assert (await send(serve.url, key, token, "while you were out", "k1"))[0] == 202
            await eventually(stream.texts, until=lambda t: t == ["while you were out"], timeout=10, what="own entry")
            consume = await GatewayProcess("consume", web_env).start()
            await eventually(stream.texts, until=lambda t: len(t) == 2, timeout=30, what="the late reply")
        assert stream.texts() == ["while you were out", "echo: while you were out"]
    finally:
        await serve.terminate()
        await consume.terminate()


async def test_the_app_api_and_its_refusals(web_env: dict[str, str]) -> None:
    serve = await GatewayProcess("serve", web_env).start()
    consume = await GatewayProcess("consume", web_env).start()
    try:
        key = "web:acme:order-42"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{serve.url}/v1/openapi.json") as r:
                doc = await r.json()
            assert doc["openapi"].startswith("3.")
            assert "/v1/conversations/{key}/messages" in doc["paths"]
            ws_url = f"{serve.url}/v1/ws?key={key}&token={APP_KEY}"
            async with s.ws_connect(ws_url) as ws:
                await ws.send_json({"type": "message", "text": "status?", "id": "w1"})
                seen: list[dict[str, Any]] = []
                while not any(m.get("text") == "echo: status?" for m in seen):
                    seen.append(await asyncio.wait_for(ws.receive_json(), 20))
            assert [m["type"] for m in seen if m["type"] == "accepted"] == ["accepted"]
        # Refusals, each with a clear 4xx and nothing queued.
        visitor = await session(serve.url)
        assert (await send(serve.url, key, "not-a-key", "x"))[0] == 401
        assert (await send(serve.url, key, visitor["token"], "x"))[0] == 401  # a visitor token, another key
        assert (await send(serve.url, "web:other:1", APP_KEY, "x"))[0] == 401  # the app's key, not its prefix
        status, answer = await send(serve.url, key, APP_KEY, "y" * 5000)
        assert status == 400
        assert "limit is 4000" in answer["error"]
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{serve.url}/v1/conversations/{key}/events") as r:
                assert r.status == 401
            headers = {"Authorization": f"Bearer {APP_KEY}", "Origin": "https://evil.example"}
            async with s.post(f"{serve.url}/v1/conversations/{key}/messages", json={"text": "x"}, headers=headers) as r:
                assert r.status == 403
        statuses = [(await send(serve.url, key, APP_KEY, f"burst {i}"))[0] for i in range(8)]
        assert 429 in statuses
        assert statuses[:4] == [202] * 4
    finally:
        await serve.terminate()
        await consume.terminate()


async def test_serve_without_the_web_secret_serves_no_web_routes(web_env: dict[str, str]) -> None:
    env = {k: v for k, v in web_env.items() if k != "GATEWAY_WEB_SECRET"}
    serve = await GatewayProcess("serve", env).start()
    try:
        async with aiohttp.ClientSession() as s:
            for path in ("/chat", "/v1/openapi.json"):
                async with s.get(serve.url + path) as r:
                    assert r.status == 404, path
    finally:
        await serve.terminate()
