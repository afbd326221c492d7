"""Slack installations in the store (in-process twin and real Redis): encrypted at rest, states single-use,
removals with their reason, and a token refresh done once by two replicas racing (real slack_sdk client
against the fake's ``oauth.v2.access``)."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack import lifecycle
from connectors.slack.installations import StoreInstallationStore, StoreStateStore, install_key
from connectors.slack.tokencrypt import TokenCipher
from connectors.slack.tokens import WorkspaceTokens
from gateway.core.errors import SendError
from gateway.core.store.base import Store
from tests.fakes.slack_api import FakeSlack


def _installations(store: Store) -> StoreInstallationStore:
    return StoreInstallationStore(store, TokenCipher(SecretStr(Fernet.generate_key().decode())))


def _installation(team: str, token: str, **kw: object) -> Installation:
    return Installation(
        app_id="A1",
        team_id=team,
        team_name=f"team {team}",
        bot_token=token,
        bot_id="B1",
        bot_user_id="U1",
        bot_scopes="chat:write",
        user_id="UINSTALLER",
        **kw,  # type: ignore[arg-type]
    )


async def test_saved_installation_is_found_and_encrypted(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TA", "xoxb-secret-A"))
    bot = await installations.async_find_bot(enterprise_id=None, team_id="TA")
    assert bot is not None
    assert bot.bot_token == "xoxb-secret-A"
    assert bot.bot_id == "B1"
    raw = await store.get(install_key(None, "TA"))
    assert raw is not None
    assert "xoxb" not in raw
    assert "team TA" not in raw  # the whole record is sealed, not only the token
    assert await installations.async_find_bot(enterprise_id=None, team_id="TB") is None
    found = await installations.async_find_installation(enterprise_id=None, team_id="TA")
    assert found is not None
    assert found.team_name == "team TA"


async def test_uninstall_removes_and_says_why_until_reinstalled(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TA", "xoxb-A"))
    await lifecycle.apply(installations, lifecycle.Removal("app_uninstalled", None, "TA", time.time(), bot=True))
    assert await installations.async_find_bot(enterprise_id=None, team_id="TA") is None
    assert "uninstalled" in (await installations.removed(None, "TA") or "")
    await installations.async_save(_installation("TA", "xoxb-A2"))
    assert await installations.removed(None, "TA") is None


async def test_a_removal_older_than_the_installation_is_ignored(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TA", "xoxb-A"))
    await lifecycle.apply(installations, lifecycle.Removal("app_uninstalled", None, "TA", time.time() - 60, bot=True))
    assert await installations.async_find_bot(enterprise_id=None, team_id="TA") is not None


async def test_tokens_revoked_user_only_keeps_the_bot(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TA", "xoxb-A", user_token="xoxp-U"))
    envelope = {
        "team_id": "TA",
        "event_time": time.time() + 1,
        "event": {"type": "tokens_revoked", "tokens": {"oauth": ["UINSTALLER"]}},
    }
    removal = lifecycle.removal(envelope)
    assert removal is not None
    assert not removal.bot
    await lifecycle.apply(installations, removal)
    found = await installations.async_find_installation(enterprise_id=None, team_id="TA")
    assert found is not None
    assert found.user_token is None
    assert found.bot_token == "xoxb-A"
    envelope["event"] = {"type": "tokens_revoked", "tokens": {"bot": ["U1"]}}
    removal = lifecycle.removal(envelope)
    assert removal is not None
    assert removal.bot
    await lifecycle.apply(installations, removal)
    assert await installations.async_find_bot(enterprise_id=None, team_id="TA") is None
    assert "revoked" in (await installations.removed(None, "TA") or "")


async def test_state_is_single_use_and_unknown_states_fail(store: Store) -> None:
    states = StoreStateStore(store, expiration_seconds=60)
    state = await states.async_issue()
    assert len(state) >= 32
    results = await asyncio.gather(*(states.async_consume(state) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert await states.async_consume(state) is False
    assert await states.async_consume("forged") is False
    assert await states.async_consume("") is False


async def test_state_expires(store: Store) -> None:
    states = StoreStateStore(store, expiration_seconds=0.3)
    state = await states.async_issue()
    deadline = time.monotonic() + 5
    while await store.get(f"slack:oauth_state:{state}") is not None:  # the store's own expiry
        assert time.monotonic() < deadline, "the state never expired"
        await asyncio.sleep(0.05)
    assert await states.async_consume(state) is False


async def test_removed_workspace_refused_others_get_the_fallback(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TA", "xoxb-A"))
    tokens = WorkspaceTokens(installations, store, fallback="xoxb-fallback")
    assert await tokens.token_for("TA") == "xoxb-A"
    assert await tokens.token_for("TOTHER") == "xoxb-fallback"
    await lifecycle.apply(installations, lifecycle.Removal("app_uninstalled", None, "TA", time.time(), bot=True))
    with pytest.raises(SendError, match="TA: the app was uninstalled"):
        await tokens.token_for("TA")
    with pytest.raises(SendError, match="SLACK_BOT_TOKEN is not set"):
        await WorkspaceTokens(installations, store).token_for("TOTHER")


async def test_two_replicas_refresh_an_expiring_token_once(store: Store) -> None:
    async with FakeSlack() as fake:
        fake.workspaces.rotating = True
        fake.workspaces.add("TA", "Team A", ["CA1"])
        client = AsyncWebClient(base_url=fake.base_url, retry_handlers=[])
        answer = await client.oauth_v2_access(
            client_id=fake.workspaces.client_id,
            client_secret=fake.workspaces.client_secret,
            code=fake.workspaces.issue_code("TA"),
        )
        first = str(answer["access_token"])
        installations = _installations(store)
        # Installed 12 h ago: the token expires in a minute, inside the refresh margin.
        await installations.async_save(
            _installation("TA", first, bot_refresh_token=answer["refresh_token"], bot_token_expires_in=60)
        )

        def replica() -> WorkspaceTokens:
            rotator = AsyncTokenRotator(
                client_id=fake.workspaces.client_id, client_secret=fake.workspaces.client_secret, client=client
            )
            return WorkspaceTokens(installations, store, rotator=rotator, rotate_before=7200)

        a, b = replica(), replica()
        fake.delay_next(0.3, method="oauth.v2.access")  # the refresh is slow: the other replica must wait for it
        got = await asyncio.gather(a.token_for("TA"), b.token_for("TA"), a.token_for("TA"), b.token_for("TA"))
        assert fake.workspaces.refreshes == 1
        assert a.refreshed + b.refreshed == 1
        assert len(set(got)) == 1
        assert got[0] != first
        assert got[0].startswith("xoxe.xoxb-")
        bot = await installations.async_find_bot(enterprise_id=None, team_id="TA")
        assert bot is not None
        assert bot.bot_token == got[0]
        assert bot.bot_token_expires_at is not None
        assert bot.bot_token_expires_at > time.time() + 3600
        # The spent refresh token is refused like Slack refuses it.
        with pytest.raises(Exception, match="invalid_refresh_token"):
            await client.oauth_v2_access(
                client_id=fake.workspaces.client_id,
                client_secret=fake.workspaces.client_secret,
                grant_type="refresh_token",
                refresh_token=answer["refresh_token"],
            )


async def test_a_workspace_of_an_enterprise_grid_org_is_found_by_its_team(store: Store) -> None:
    installations = _installations(store)
    await installations.async_save(_installation("TG", "xoxb-grid", enterprise_id="E1"))
    tokens = WorkspaceTokens(installations, store, fallback="xoxb-fallback")
    assert await tokens.token_for("TG") == "xoxb-grid"
    removal = lifecycle.removal({"team_id": "TG", "enterprise_id": "E1", "event": {"type": "app_uninstalled"}})
    assert removal is not None
    await lifecycle.apply(installations, removal)
    with pytest.raises(SendError, match="uninstalled"):
        await tokens.token_for("TG")
    assert await store.get(install_key("E1", "TG")) is None
