"""The OAuth routes and the uninstall effect in-process (real app, in-process bus and store): 404 unless
configured, a 302 to Slack's authorize URL, refusals that are never a 500, and ``app_uninstalled`` removing
the workspace before the 200 (503 when the store cannot)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation

from connectors import build_registry
from connectors.platform import Parts
from connectors.slack import oauth
from connectors.slack.platform import PLATFORM as SLACK
from gateway.core.bus.memory import MemoryBus
from gateway.core.bus.topology import Topology
from gateway.core.config import GatewayFile
from gateway.core.errors import StoreUnavailable
from gateway.core.ingest import Ingestor
from gateway.core.metrics import Metrics
from gateway.core.publish import Publisher
from gateway.core.routing import Router
from gateway.core.settings import Settings
from gateway.core.store.memory import MemoryStore
from gateway.http import HttpState, build_app
from tests.support.processes import free_port
from tests.support.signing import slack_headers

SECRET = "unit-slack-signing-secret-0123456789"
OAUTH = {
    "SLACK_CLIENT_ID": "1111.2222",
    "SLACK_CLIENT_SECRET": "unit-client-secret-abcdef0123456789",
    "GATEWAY_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


class FlakyStore(MemoryStore):
    broken = False

    async def delete(self, *keys: str) -> None:
        if self.broken:
            raise StoreUnavailable("Redis is down")
        await super().delete(*keys)


@asynccontextmanager
async def app(env: dict[str, str]) -> AsyncIterator[tuple[TestClient[Any, Any], FlakyStore, MemoryBus]]:
    settings = Settings.model_validate({"SLACK_SIGNING_SECRET": SECRET, **env})
    file = GatewayFile()
    bus = MemoryBus(Topology("unit", 2))
    await bus.start()
    store = FlakyStore("unit")
    metrics = Metrics()
    ingestor = Ingestor(Publisher(bus, metrics), store, Router(file.routes, settings.default_agent), metrics)
    parts = Parts(settings, file, store=store, bus=bus, ingestor=ingestor, metrics=metrics)
    assert SLACK.http is not None
    mount = SLACK.http(parts)
    assert mount is not None
    state = HttpState(
        bus=bus, store=store, metrics=metrics, registry=build_registry(settings, file, parts), ingestor=ingestor
    )
    state.mounts.append(mount)
    async with TestClient(TestServer(build_app(state))) as client:
        yield client, store, bus
    await bus.close()


def uninstalled(team: str = "TA") -> bytes:
    return json.dumps(
        {
            "team_id": team,
            "api_app_id": "A1",
            "event": {"type": "app_uninstalled"},
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()) + 1,
        }
    ).encode()


async def test_routes_are_404_without_the_three_settings() -> None:
    for missing in OAUTH:
        env = {k: v for k, v in OAUTH.items() if k != missing}
        async with app(env) as (client, _, _):
            for path in ("/slack/install", "/slack/oauth_redirect?code=x&state=y"):
                r = await client.get(path, allow_redirects=False)
                assert r.status == 404, (missing, path)
                assert missing in (await r.json())["error"]
            # Events work as before; an app_uninstalled is accepted and changes nothing.
            body = uninstalled()
            assert (await client.post("/slack/events", data=body, headers=slack_headers(SECRET, body))).status == 200


async def test_install_redirects_to_slacks_authorize_url() -> None:
    async with app(OAUTH) as (client, store, _):
        r = await client.get("/slack/install", allow_redirects=False)
        assert r.status == 302
        to = urlsplit(r.headers["Location"])
        query = dict(parse_qsl(to.query))
        assert f"{to.scheme}://{to.netloc}{to.path}" == "https://slack.com/oauth/v2/authorize"
        assert query["client_id"] == "1111.2222"
        assert "chat:write" in query["scope"].split(",")
        state = query["state"]
        assert await store.get(f"slack:oauth_state:{state}") == "1"
        assert r.headers["Set-Cookie"].startswith(f"slack-app-oauth-state={state};")


async def test_slack_unreachable_during_the_exchange_is_502_not_500() -> None:
    env = {**OAUTH, "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"}  # nothing listens there
    async with app(env) as (client, _, _):
        location = (await client.get("/slack/install", allow_redirects=False)).headers["Location"]
        state = dict(parse_qsl(urlsplit(location).query))["state"]
        r = await client.get(
            f"/slack/oauth_redirect?code=c&state={state}", headers={"Cookie": f"slack-app-oauth-state={state}"}
        )
        assert r.status == 502


async def test_app_uninstalled_removes_the_workspace_before_the_200() -> None:
    async with app(OAUTH) as (client, store, _):
        installations = oauth.installation_store(Settings.model_validate(OAUTH), store)
        assert installations is not None
        await installations.async_save(Installation(team_id="TA", bot_token="xoxb-A", user_id="U1"))
        body = uninstalled()
        store.broken = True
        r = await client.post("/slack/events", data=body, headers=slack_headers(SECRET, body))
        assert r.status == 503  # Slack sends it again
        assert await installations.async_find_bot(enterprise_id=None, team_id="TA") is not None
        store.broken = False
        r = await client.post("/slack/events", data=body, headers=slack_headers(SECRET, body))
        assert r.status == 200
        assert await installations.async_find_bot(enterprise_id=None, team_id="TA") is None
        assert await installations.removed(None, "TA") is not None
