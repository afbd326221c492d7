"""Teams: the Bot Connector's JWT (issuer, audience, expiry, signing key, endorsements, serviceUrl), the key
cache (fetched once, refreshed on an unknown key id), activities parsed from recorded payloads, and the
sender against the fake Bot Framework (token cached and refreshed, the reply path, 429)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors import build_registry
from connectors.base import InboundRequest
from connectors.secret_policy import audit, enforce
from connectors.teams.connector import TeamsConnector
from connectors.teams.keys import KeysUnavailable, SigningKeys
from connectors.teams.sender import TeamsSender
from gateway.core.config import GatewayFile
from gateway.core.errors import BadSignature, ConfigError, MalformedPayload, RateLimited, SendError
from gateway.core.events import EventKind, OutboundMessage, ReplyAddress
from gateway.core.settings import Settings
from tests.fakes.botframework import FakeBotFramework
from tests.support.waiting import eventually
from tests.unit.builders import fixture_json

APP_ID = "00000000-0000-0000-0000-000000000001"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
METADATA = "https://login.example/v1/.well-known/openidconfiguration"


class Keys:
    """The fake's key set served without HTTP, counting fetches."""

    def __init__(self, fake: FakeBotFramework) -> None:
        self.fake = fake
        self.fetches = 0

    async def __call__(self, url: str) -> dict[str, Any]:
        if url.endswith("openidconfiguration"):
            self.fetches += 1
            return {
                "issuer": "https://api.botframework.com",
                "jwks_uri": "keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        return self.fake.jwks()


@pytest.fixture
def bf() -> FakeBotFramework:
    return FakeBotFramework(app_id=APP_ID)


def connector(bf: FakeBotFramework, *, min_refresh: float = 60.0) -> tuple[TeamsConnector, Keys]:
    fetch = Keys(bf)
    return TeamsConnector(APP_ID, SigningKeys(METADATA, fetch=fetch, min_refresh=min_refresh)), fetch


def activity(name: str = "teams_channel_message.json") -> dict[str, Any]:
    data: dict[str, Any] = fixture_json(name)
    return data


def request(body: dict[str, Any], token: str | None) -> InboundRequest:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return InboundRequest("messages", headers, json.dumps(body).encode(), time.time())


def forged(bf: FakeBotFramework, **claims: Any) -> str:
    now = int(time.time())
    base = {"iss": "https://api.botframework.com", "aud": APP_ID, "exp": now + 600, "nbf": now - 5}
    base["serviceurl"] = "https://smba.trafficmanager.net/amer/"
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, bf.private_pem(), "RS256", {"kid": bf.kid})


async def accept(bf: FakeBotFramework, token: str, body: dict[str, Any] | None = None) -> Any:
    teams, _ = connector(bf)
    return await teams.handle_async(request(body or activity(), token))


async def refused(bf: FakeBotFramework, token: str | None, body: dict[str, Any] | None = None) -> str:
    teams, _ = connector(bf)
    with pytest.raises(BadSignature) as info:
        await teams.handle_async(request(body or activity(), token))
    assert info.value.status == 401
    return info.value.reason


# --- the token -------------------------------------------------------------------------------------


async def test_a_bot_connector_token_is_accepted(bf: FakeBotFramework) -> None:
    result = await accept(bf, bf.mint("https://smba.trafficmanager.net/amer/"))
    [event] = result.events
    assert event.platform == "teams"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"iss": "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"}, "not issued by the Bot Framework"),
        ({"aud": "another-bots-app-id"}, "another bot"),
        ({"exp": int(time.time()) - 301}, "expired"),  # past the 5 minutes of clock skew
        ({"serviceurl": "https://attacker.example/"}, "serviceurl"),
        ({"serviceurl": None}, "serviceurl"),
        ({"aud": None}, "does not verify"),
    ],
)
async def test_a_token_that_does_not_speak_for_this_bot_is_401(
    bf: FakeBotFramework, claims: dict[str, Any], why: str
) -> None:
    assert why in await refused(bf, forged(bf, **claims))


async def test_expired_within_the_clock_skew_is_still_accepted(bf: FakeBotFramework) -> None:
    assert (await accept(bf, forged(bf, exp=int(time.time()) - 120))).events


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer not-a-jwt"])
async def test_no_bearer_jwt_is_401(bf: FakeBotFramework, header: str | None) -> None:
    teams, _ = connector(bf)
    headers = {} if header is None else {"authorization": header}
    with pytest.raises(BadSignature):
        await teams.handle_async(InboundRequest("messages", headers, b"{}", time.time()))


async def test_a_key_the_bot_framework_does_not_publish_is_401_and_fetched_once(bf: FakeBotFramework) -> None:
    teams, fetch = connector(bf)
    await teams.handle_async(request(activity(), bf.mint("https://smba.trafficmanager.net/amer/")))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(3):
        token = bf.mint("https://smba.trafficmanager.net/amer/", kid="unknown-kid", key=stranger)
        with pytest.raises(BadSignature, match="does not publish"):
            await teams.handle_async(request(activity(), token))
    assert fetch.fetches == 1  # forged key ids do not make us fetch again within min_refresh


async def test_a_published_kid_signed_by_another_key_is_401(bf: FakeBotFramework) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = bf.mint("https://smba.trafficmanager.net/amer/", key=stranger)
    assert "does not verify" in await refused(bf, token)


async def test_a_none_or_hs256_token_is_401(bf: FakeBotFramework) -> None:
    body = {"iss": "https://api.botframework.com", "aud": APP_ID, "exp": int(time.time()) + 60}
    unsigned = jwt.encode(body, None, "none", {"kid": bf.kid})
    assert "does not verify" in await refused(bf, unsigned)


async def test_a_rotated_key_is_fetched_on_its_first_use(bf: FakeBotFramework) -> None:
    teams, fetch = connector(bf, min_refresh=0)
    await teams.handle_async(request(activity(), bf.mint("https://smba.trafficmanager.net/amer/")))
    bf.rotate()
    result = await teams.handle_async(request(activity(), bf.mint("https://smba.trafficmanager.net/amer/")))
    assert result.events
    assert fetch.fetches == 2


async def test_a_key_not_endorsed_for_the_channel_is_401(bf: FakeBotFramework) -> None:
    body = {**activity(), "channelId": "slack"}
    assert "endorsed" in await refused(bf, bf.mint("https://smba.trafficmanager.net/amer/"), body)


async def test_unreachable_keys_are_503_so_the_connector_retries(bf: FakeBotFramework) -> None:
    async def down(url: str) -> dict[str, Any]:
        raise OSError("connection refused")

    teams = TeamsConnector(APP_ID, SigningKeys(METADATA, fetch=down))
    with pytest.raises(KeysUnavailable) as info:
        await teams.handle_async(request(activity(), bf.mint("https://smba.trafficmanager.net/amer/")))
    assert info.value.status == 503


async def test_a_valid_token_with_a_malformed_body_is_400(bf: FakeBotFramework) -> None:
    teams, _ = connector(bf)
    token = bf.mint("https://smba.trafficmanager.net/amer/")
    with pytest.raises(MalformedPayload):
        await teams.handle_async(InboundRequest("messages", {"authorization": f"Bearer {token}"}, b"[]", 0.0))


# --- parsing ---------------------------------------------------------------------------------------


async def parsed(bf: FakeBotFramework, name: str) -> Any:
    body = activity(name)
    [event] = (await accept(bf, bf.mint(body["serviceUrl"]), body)).events
    return event


async def test_channel_message_keeps_its_reply_chain_in_the_key(bf: FakeBotFramework) -> None:
    event = await parsed(bf, "teams_channel_message.json")
    conversation = "19:6decf54d86d945e4b3924b63a9161a78@thread.skype;messageid=1611060744833"
    assert event.conversation_key == f"teams:{TENANT}:{conversation}"
    assert event.text == "what is the status of order 1042?"  # the bot's own mention is markup, not words
    assert (event.kind, event.delivery_id, event.reply_to.message) == (
        EventKind.MESSAGE,
        "1733511065990",
        "1733511065990",
    )
    assert event.reply_to.reply_url == "https://smba.trafficmanager.net/amer/"
    assert event.sender is not None
    assert (event.sender.id, event.sender.name) == ("48d31887-5fad-4d73-a9f5-3c356e68a038", "Megan Bowen")
    assert event.triggers_turn


async def test_personal_message(bf: FakeBotFramework) -> None:
    event = await parsed(bf, "teams_personal_message.json")
    assert event.text == "hello there"
    assert event.conversation_key == f"teams:{TENANT}:a:1Kzq3nGQmFh0KVX5ZQwF8SvN2t9CjPf1r_example-personal-chat"


async def test_a_card_submit_is_an_action_with_its_value(bf: FakeBotFramework) -> None:
    event = await parsed(bf, "teams_card_action.json")
    assert event.kind is EventKind.ACTION
    assert json.loads(event.text) == {"action": "approve", "order": "A-1042"}


async def test_a_conversation_update_is_not_a_turn(bf: FakeBotFramework) -> None:
    event = await parsed(bf, "teams_conversation_update.json")
    assert (event.kind, event.skip_reason) == (EventKind.OTHER, "unsupported activity")
    assert not event.triggers_turn


# --- the sender ------------------------------------------------------------------------------------


@pytest.fixture
async def live() -> AsyncIterator[FakeBotFramework]:
    async with FakeBotFramework(app_id=APP_ID, token_lifetime=3599) as fake:
        yield fake


def outbound(fake: FakeBotFramework, text: str, action: str = "reply") -> OutboundMessage:
    to = ReplyAddress(
        platform="teams",
        bot=TENANT,
        channel="19:abc@thread.tacv2;messageid=1611060744833",
        message="1611060744999",
        reply_url=fake.base_url,
    )
    return OutboundMessage(id=text, event_id="e", conversation_key="k", action=action, to=to, text=text)  # type: ignore[arg-type]


async def test_replies_go_to_the_activity_with_one_cached_token(live: FakeBotFramework) -> None:
    sender = TeamsSender(APP_ID, live.password, live.token_url)
    try:
        first = await sender.send(outbound(live, "one"))
        await sender.send(outbound(live, "two"))
        await sender.send(outbound(live, "", "typing"))
        skipped = await sender.send(outbound(live, "", "react"))
    finally:
        await sender.close()
    assert first["id"]
    assert [(m["conversation_id"], m["reply_to"], m["text"]) for m in live.messages] == [
        ("19:abc@thread.tacv2;messageid=1611060744833", "1611060744999", "one"),
        ("19:abc@thread.tacv2;messageid=1611060744833", "1611060744999", "two"),
    ]
    assert live.messages[0]["replyToId"] == "1611060744999"
    assert len(live.calls_for("token")) == 1
    assert live.calls_for("token")[0].args["scope"] == "https://api.botframework.com/.default"
    assert len(live.calls_for("send_typing")) == 1
    assert "skipped" in skipped


async def test_a_token_near_its_expiry_is_fetched_again(live: FakeBotFramework) -> None:
    live.token_lifetime = 1  # a short token is kept for half its life
    sender = TeamsSender(APP_ID, live.password, live.token_url)
    try:
        await sender.send(outbound(live, "one"))
        await eventually(live.every_token_expired, timeout=5, what="the first token to expire")
        await sender.send(outbound(live, "two"))
    finally:
        await sender.close()
    assert len(live.calls_for("token")) == 2
    assert [m["text"] for m in live.messages] == ["one", "two"]


async def test_429_is_rate_limited_and_a_wrong_password_is_a_send_error(live: FakeBotFramework) -> None:
    live.rate_limit_next(1, retry_after=2, method="reply")
    sender = TeamsSender(APP_ID, live.password, live.token_url)
    wrong = TeamsSender(APP_ID, "not-the-password-of-this-bot-at-all", live.token_url)
    try:
        with pytest.raises(RateLimited) as limited:
            await sender.send(outbound(live, "one"))
        with pytest.raises(SendError) as refused_token:
            await wrong.send(outbound(live, "two"))
    finally:
        await sender.close()
        await wrong.close()
    assert limited.value.retry_after == 2.0
    assert "invalid_client" in str(refused_token.value) or "AADSTS7000215" in str(refused_token.value)
    assert live.messages == []


# --- secrets and enabling --------------------------------------------------------------------------


def test_a_placeholder_password_never_enables_teams_and_a_short_one_is_weak() -> None:
    with pytest.raises(ConfigError, match="TEAMS_APP_PASSWORD"):
        enforce(Settings(TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD="changeme"), GatewayFile(), command="dev")  # type: ignore[call-arg]
    weak = audit(Settings(TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD="abc8Q~short"), GatewayFile())  # type: ignore[call-arg]
    assert [(p.variable, p.severity) for p in weak] == [("TEAMS_APP_PASSWORD", "weak")]


@pytest.mark.parametrize("env", [{}, {"TEAMS_APP_ID": APP_ID}, {"TEAMS_APP_PASSWORD": "p" * 40}])
def test_without_the_app_id_and_password_teams_is_not_registered(env: dict[str, str]) -> None:
    registry = build_registry(Settings(**env), GatewayFile())  # type: ignore[arg-type]
    assert registry.get("teams") is None
    assert any("Teams is disabled" in note for note in registry.notes)
