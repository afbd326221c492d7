"""The Bot Framework's signing keys: OpenID metadata, then its JWKS, cached.

Verifying a token is CPU only (``known``); fetching keys is I/O, done by ``ensure`` before verification (the
connector's ``handle_async``): the first request fetches them, a token signed with a key id we do not know
fetches them again (a rotation), at most once per ``min_refresh`` seconds so forged key ids cannot make us
hammer the metadata endpoint, and a key set older than ``max_age`` is refreshed on the next request. A fetch
that fails while the token's key is unknown answers 503 (the Bot Connector retries), never 200 and never a
silent 401 for a request that may be genuine.

Followed: "Authentication with the Bot Connector API" (Connector to Bot, steps 2-4: the metadata at
https://login.botframework.com/v1/.well-known/openidconfiguration names ``jwks_uri``; keys carry
``endorsements``, the channel ids they may sign for), Bot Framework REST API v3, checked 2026-12.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import structlog

from gateway.core.errors import RequestError

log = structlog.get_logger(__name__)
#: Fetches a URL's JSON object; replaceable in tests.
Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class KeysUnavailable(RequestError):
    """503: the signing keys could not be fetched; the Bot Connector delivers the activity again."""

    status = 503


@dataclass(frozen=True)
class SigningKey:
    key: Any  # the public key object PyJWT verifies with
    endorsements: frozenset[str]


async def fetch_json(url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(url) as resp,
    ):
        resp.raise_for_status()
        data = await resp.json(content_type=None)
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return data


class SigningKeys:
    def __init__(
        self, metadata_url: str, *, fetch: Fetch = fetch_json, min_refresh: float = 60.0, max_age: float = 86400.0
    ) -> None:
        self._metadata_url = metadata_url
        self._fetch = fetch
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._keys: dict[str, SigningKey] = {}
        self._algorithms: tuple[str, ...] = ("RS256",)
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def algorithms(self) -> tuple[str, ...]:
        """``id_token_signing_alg_values_supported`` of the metadata (RS256)."""
        return self._algorithms

    def known(self, kid: str) -> SigningKey | None:
        return self._keys.get(kid)

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at > self._max_age

    async def ensure(self, kid: str) -> None:
        """Make ``kid`` known if the Bot Framework has it; raise :class:`KeysUnavailable` if nobody can say."""
        if kid in self._keys and not self._stale(time.monotonic()):
            return
        async with self._lock:  # one fetch at a time; waiters see its result
            now = time.monotonic()
            if kid in self._keys and not self._stale(now):
                return
            if self._tried_at is not None and now - self._tried_at < self._min_refresh:
                if not self._keys:
                    raise KeysUnavailable(
                        "the Bot Framework's signing keys could not be fetched; retry", platform="teams"
                    )
                return  # fetched moments ago: an unknown key id is refused by verification
            self._tried_at = now
            try:
                await self._refresh()
            except Exception as exc:
                log.warning("teams_keys_unavailable", url=self._metadata_url, error=f"{type(exc).__name__}: {exc}")
                if kid not in self._keys:
                    raise KeysUnavailable(
                        "the Bot Framework's signing keys could not be fetched; retry", platform="teams"
                    ) from exc

    async def _refresh(self) -> None:
        metadata = await self._fetch(self._metadata_url)
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the OpenID metadata has no jwks_uri")
        algorithms = metadata.get("id_token_signing_alg_values_supported")
        document = await self._fetch(jwks_uri)
        keys: dict[str, SigningKey] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                public = jwt.PyJWK(entry, algorithm="RS256").key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
            endorsements = entry.get("endorsements") or []
            keys[entry["kid"]] = SigningKey(public, frozenset(str(e) for e in endorsements))
        if not keys:
            raise ValueError("the JWKS has no usable RSA key")
        self._keys = keys
        if isinstance(algorithms, list) and algorithms:
            self._algorithms = tuple(str(a) for a in algorithms if str(a).startswith("RS")) or ("RS256",)
        self._fetched_at = time.monotonic()
        log.info("teams_keys_fetched", keys=len(keys))
