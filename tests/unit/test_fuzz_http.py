"""Property-based fuzzing of every route: random methods, paths, headers, content types and bodies, unsigned
and correctly signed, through the real connectors and the in-process bus and store. Whatever arrives, the
answer is never a 5xx, never echoes Python internals, and the gateway stays healthy for the next request."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.config import GatewayFile
from gateway.core.settings import Settings
from tests.support.signing import slack_headers, webhook_headers
from tests.unit.test_http_app import SHOP_FILE, SHOP_SECRET, SLACK_SECRET, TG_TOKEN, running

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
ROUTES = [
    "/slack/events",
    "/slack/interactions",
    "/slack/commands",
    "/slack/unknown",
    "/telegram/default",
    "/telegram/nope",
    "/webhooks/shop",
    "/webhooks/nope",
    "/healthz",
    "/readyz",
    "/metrics",
    "/chat",
    "/chat/session",
    "/v1/openapi.json",
    "/v1/conversations/web:default:v1/messages",
    "/v1/conversations/web:acme:x/events",
    "/v1/conversations/web:acme:x/state",
    "/nowhere",
    "/slack/events/../../etc",
]
INTERNALS = ("Traceback", 'File "', "Error(", "<class", "object at 0x", "pydantic", "line ")
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""]
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def body_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        JSONISH.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(
            st.sampled_from(["type", "event_id", "event", "update_id", "message", "customer_id", "text", "payload"]),
            JSONISH,
            max_size=5,
        ).map(lambda v: json.dumps(v).encode()),
        st.text(max_size=200).map(lambda t: f"payload={t}&command=/x&text={t}".encode()),
    )


def sign(route: str, body: bytes, how: str) -> dict[str, str]:
    if how == "none":
        return {}
    if route.startswith("/slack"):
        return slack_headers(SLACK_SECRET, body, ts=int(time.time()) - (0 if how == "signed" else 3600))
    if route.startswith("/telegram"):
        return {"X-Telegram-Bot-Api-Secret-Token": TG_TOKEN if how == "signed" else "wrong"}
    if route.startswith("/webhooks"):
        return webhook_headers(SHOP_SECRET, body, ts=int(time.time()) - (0 if how == "signed" else 3600))
    if route.startswith("/v1"):
        return {"Authorization": "Bearer v1.default.v1.9999999999.forged"}
    return {}


HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    route=st.sampled_from(ROUTES),
    body=body_strategy(),
    content_type=CONTENT_TYPES,
    how=st.sampled_from(["signed", "signed", "stale", "none"]),
    extra=st.dictionaries(
        st.sampled_from(["X-Slack-Retry-Num", "Origin", "Last-Event-ID", "Content-Encoding", "X-Forwarded-For"]),
        HEADER_VALUES,
        max_size=3,
    ),
)
def test_no_request_gets_a_5xx_or_leaks_internals(
    method: str, route: str, body: bytes, content_type: str, how: str, extra: dict[str, str]
) -> None:
    asyncio.run(_one(method, route, body, content_type, how, extra))


FILE = GatewayFile.model_validate({**SHOP_FILE.model_dump(), "web": {"apps": {}}})


async def _one(method: str, route: str, body: bytes, content_type: str, how: str, extra: dict[str, str]) -> None:
    os.environ["SHOP_WEBHOOK_SECRET"] = SHOP_SECRET
    env = Settings(slack_signing_secret=SLACK_SECRET, telegram_bot_token="1:abc", telegram_secret_token=TG_TOKEN)
    async with running(env, FILE, web=True) as gw:
        headers = {**sign(route, body, how), **extra}
        if content_type:
            headers["Content-Type"] = content_type
        async with gw.client.request(method, route, data=body, headers=headers) as r:
            text = await r.text(errors="replace")
            assert r.status < 500, (r.status, text[:300])
            if r.status >= 400 and r.content_type == "application/json" and method != "HEAD":
                error = json.loads(text).get("error", "")
                assert not any(marker in error for marker in INTERNALS), error
        # Healthy afterwards: a normal signed request still goes through.
        event = {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.1"}
        ok: dict[str, Any] = {
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "team_id": "T1",
            "event": event,
        }
        good = json.dumps(ok).encode()
        async with gw.client.post("/slack/events", data=good, headers=slack_headers(SLACK_SECRET, good)) as r:
            assert r.status == 200
        async with gw.client.get("/readyz") as r:
            assert r.status == 200
