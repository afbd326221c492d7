"""The workspaces of :class:`~tests.fakes.slack_api.FakeSlack`: installs, per-token auth, rotation, revocation.

What the fake refuses, like Slack (https://docs.slack.dev/reference/methods/oauth.v2.access and
https://docs.slack.dev/authentication/using-token-rotation, followed 2026-12):

- ``oauth.v2.access`` needs the app's ``client_id`` and ``client_secret`` (HTTP Basic, as slack_sdk sends
  them, or form fields): ``invalid_client_id`` / ``bad_client_secret``; a ``code`` works once
  (``invalid_code`` after), a refresh token works once (``invalid_refresh_token`` after), a ``redirect_uri``
  must be the one the code was issued for (``bad_redirect_uri``).
- A token belongs to one workspace: posting with team A's token to team B's channel is ``channel_not_found``;
  a revoked token is ``token_revoked``, an expired rotating one ``token_expired``, an unknown one
  ``invalid_auth``.

With ``rotating=True`` installs answer like an app with token rotation turned on: ``xoxe.xoxb-`` access tokens
with ``expires_in`` and an ``xoxe-1-`` ``refresh_token``.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeWorkspace:
    team_id: str
    name: str
    channels: set[str]
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None


@dataclass
class Grant:
    token: str
    team_id: str
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class Workspaces:
    client_id: str = "1111.2222"
    client_secret: str = "fake-client-secret-0123456789abcdef"
    app_id: str = "A0FAKEAPP"
    rotating: bool = False
    expires_in: int = 43200
    teams: dict[str, FakeWorkspace] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    #: code -> (team, redirect_uri, scopes); a code is removed when used.
    codes: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    #: refresh token -> team; removed when used.
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    #: Refresh grants accepted (the rotation tests count them).
    refreshes: int = 0

    def add(self, team_id: str, name: str, channels: list[str]) -> FakeWorkspace:
        n = len(self.teams) + 1
        ws = FakeWorkspace(team_id, name, set(channels), bot_user_id=f"UBOT{n}", bot_id=f"BBOT{n}")
        self.teams[team_id] = ws
        return ws

    def issue_code(self, team_id: str, redirect_uri: str | None = None, scopes: str = "chat:write") -> str:
        if team_id not in self.teams:
            raise KeyError(f"no fake workspace {team_id!r}")
        code = f"{int(time.time())}.{secrets.token_hex(8)}"
        self.codes[code] = (team_id, redirect_uri, scopes)
        return code

    def revoke(self, team_id: str) -> None:
        """The app's tokens in ``team_id`` stop working (what an uninstall does)."""
        for grant in self.grants.values():
            if grant.team_id == team_id:
                grant.revoked = True

    def expire(self, token: str) -> None:
        self.grants[token].expires_at = time.time() - 1

    def tokens_of(self, team_id: str) -> list[str]:
        return [g.token for g in self.grants.values() if g.team_id == team_id]

    # ------------------------------------------------------------------ auth
    def auth_error(self, token: str) -> str | None:
        grant = self.grants.get(token)
        if grant is None:
            return "invalid_auth"
        if grant.revoked:
            return "token_revoked"
        if grant.expires_at is not None and grant.expires_at < time.time():
            return "token_expired"
        return None

    def team_of(self, token: str) -> FakeWorkspace | None:
        grant = self.grants.get(token)
        return self.teams.get(grant.team_id) if grant is not None else None

    def channel_owner(self, channel: str) -> str | None:
        return next((t.team_id for t in self.teams.values() if channel in t.channels), None)

    # ------------------------------------------------------------------ oauth.v2.access
    def _grant(self, team: FakeWorkspace) -> dict[str, Any]:
        prefix = "xoxe.xoxb-1-" if self.rotating else "xoxb-"
        token = f"{prefix}{team.team_id}-{secrets.token_hex(12)}"
        grant = Grant(token, team.team_id, time.time() + self.expires_in if self.rotating else None)
        self.grants[token] = grant
        answer: dict[str, Any] = {"access_token": token, "token_type": "bot"}
        if self.rotating:
            refresh = f"xoxe-1-{secrets.token_hex(16)}"
            self.refresh_tokens[refresh] = team.team_id
            answer.update({"refresh_token": refresh, "expires_in": self.expires_in})
        return answer

    def access(self, args: dict[str, Any], authorization: str) -> dict[str, Any]:
        client_id, client_secret = args.get("client_id"), args.get("client_secret")
        if authorization.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                return {"ok": False, "error": "invalid_client_id"}
        if client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        if args.get("grant_type") == "refresh_token":
            team_id = self.refresh_tokens.pop(str(args.get("refresh_token") or ""), None)
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            self.refreshes += 1
            team = self.teams[team_id]
            return {"ok": True, **self._grant(team), **self._identity(team, "chat:write")}
        if args.get("grant_type") not in (None, "authorization_code"):
            return {"ok": False, "error": "invalid_grant_type"}
        issued = self.codes.pop(str(args.get("code") or ""), None)
        if issued is None:
            return {"ok": False, "error": "invalid_code"}
        team_id, redirect_uri, scopes = issued
        if redirect_uri is not None and args.get("redirect_uri") != redirect_uri:
            return {"ok": False, "error": "bad_redirect_uri"}
        team = self.teams[team_id]
        return {"ok": True, **self._grant(team), **self._identity(team, scopes), "authed_user": {"id": "UINSTALLER"}}

    def _identity(self, team: FakeWorkspace, scopes: str) -> dict[str, Any]:
        return {
            "scope": scopes,
            "bot_user_id": team.bot_user_id,
            "app_id": self.app_id,
            "team": {"id": team.team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
