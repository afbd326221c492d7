"""The fake Slack refuses what Slack refuses across workspaces (through the real slack_sdk client): wrong client
credentials, a code used twice, another workspace's channel, a revoked token."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack


async def test_codes_credentials_and_tokens_are_checked_like_slack() -> None:
    async with FakeSlack(token="xoxb-legacy") as fake:
        ws = fake.workspaces
        ws.add("TA", "Team A", ["CA1"])
        ws.add("TB", "Team B", ["CB1"])
        client = AsyncWebClient(base_url=fake.base_url, retry_handlers=[])
        code = ws.issue_code("TA")
        with pytest.raises(SlackApiError, match="bad_client_secret"):
            await client.oauth_v2_access(client_id=ws.client_id, client_secret="wrong", code=code)
        with pytest.raises(SlackApiError, match="invalid_client_id"):
            await client.oauth_v2_access(client_id="9.9", client_secret=ws.client_secret, code=code)
        answer = await client.oauth_v2_access(client_id=ws.client_id, client_secret=ws.client_secret, code=code)
        assert answer["team"] == {"id": "TA", "name": "Team A"}
        assert answer["token_type"] == "bot"
        assert "refresh_token" not in answer.data  # type: ignore[operator]
        with pytest.raises(SlackApiError, match="invalid_code"):
            await client.oauth_v2_access(client_id=ws.client_id, client_secret=ws.client_secret, code=code)
        token_a = str(answer["access_token"])
        assert (await client.auth_test(token=token_a))["team_id"] == "TA"
        await client.chat_postMessage(token=token_a, channel="CA1", text="mine")
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_postMessage(token=token_a, channel="CB1", text="theirs")
        await client.chat_postMessage(token="xoxb-legacy", channel="CB1", text="the single token still works")
        ws.revoke("TA")
        with pytest.raises(SlackApiError, match="token_revoked"):
            await client.chat_postMessage(token=token_a, channel="CA1", text="after uninstall")
        with pytest.raises(SlackApiError, match="invalid_auth"):
            await client.chat_postMessage(token="xoxb-made-up", channel="CA1", text="?")
        assert [(t, a["text"]) for t, a in fake.posts] == [
            (token_a, "mine"),
            ("xoxb-legacy", "the single token still works"),
        ]


async def test_rotating_tokens_expire_and_refresh_tokens_work_once() -> None:
    async with FakeSlack() as fake:
        ws = fake.workspaces
        ws.rotating = True
        ws.add("TA", "Team A", ["CA1"])
        client = AsyncWebClient(base_url=fake.base_url, retry_handlers=[])
        creds = {"client_id": ws.client_id, "client_secret": ws.client_secret}
        first = await client.oauth_v2_access(**creds, code=ws.issue_code("TA"))
        assert first["expires_in"] == 43200
        assert str(first["access_token"]).startswith("xoxe.xoxb-")
        ws.expire(str(first["access_token"]))
        with pytest.raises(SlackApiError, match="token_expired"):
            await client.chat_postMessage(token=str(first["access_token"]), channel="CA1", text="late")
        second = await client.oauth_v2_access(**creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        await client.chat_postMessage(token=str(second["access_token"]), channel="CA1", text="fresh")
        with pytest.raises(SlackApiError, match="invalid_refresh_token"):
            await client.oauth_v2_access(**creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert ws.refreshes == 1
