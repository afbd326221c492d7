"""The bot's own token for the Bot Connector: OAuth2 client credentials, cached until near its expiry.

``POST {TEAMS_TOKEN_URL}`` (``https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token``) with
``grant_type=client_credentials``, the app id and password, and ``scope=https://api.botframework.com/.default``
answers ``{"token_type": "Bearer", "expires_in": 3599, "access_token": "…"}``. One fetch at a time (a lock:
a burst of replies makes one request), reused until ``REFRESH_BEFORE`` seconds before it expires, dropped
when the connector answers 401.

Followed: "Authentication with the Bot Connector API", Bot to Connector, steps 1-3, checked 2026-12.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from gateway.core.errors import SendError

SCOPE = "https://api.botframework.com/.default"
#: Refresh this long before expiry (and never keep one for more than half its life when it is short).
REFRESH_BEFORE = 300.0


class BotToken:
    def __init__(self, app_id: str, password: str, token_url: str) -> None:
        self._form = {
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": password,
            "scope": SCOPE,
        }
        self._url = token_url
        self._token: str | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()
        #: Tokens fetched so far (tests and metrics read it).
        self.fetches = 0

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def get(self, session: aiohttp.ClientSession) -> str:
        if self._token is not None and time.monotonic() < self._until:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._until:
                return self._token
            self._token, self._until = await self._fetch(session)
            return self._token

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        started = time.monotonic()
        try:
            async with session.post(self._url, data=self._form) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except TRANSPORT_ERRORS as exc:
            # Nothing was posted to the conversation yet: retrying the whole send is safe.
            raise SendError(
                f"no Bot Framework token: {transport_error(exc, platform='teams', target=self._url)}",
                platform="teams",
                retryable=True,
            ) from exc
        except ValueError as exc:
            raise SendError("the token endpoint did not answer JSON", platform="teams", retryable=True) from exc
        token = data.get("access_token") if isinstance(data, dict) else None
        if status != 200 or not isinstance(token, str):
            error = data.get("error_description") or data.get("error") if isinstance(data, dict) else None
            raise SendError(
                f"the token endpoint refused TEAMS_APP_ID/TEAMS_APP_PASSWORD: HTTP {status} {error}"[:500],
                platform="teams",
                retryable=status >= 500 or status == 429,  # nothing was posted: a later try is safe
            )
        self.fetches += 1
        lifetime = float(data.get("expires_in") or 3600)
        return token, started + max(lifetime - REFRESH_BEFORE, lifetime / 2)
