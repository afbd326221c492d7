"""Who may speak in a web conversation: a visitor token for its own key, an app key for ``web:{app}:*``."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field

from connectors.web import token as tokens
from gateway.core.errors import BadSignature, RequestError


class Forbidden(RequestError):
    status = 403


@dataclass(frozen=True)
class Site:
    name: str
    secret: bytes
    allowed_origins: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Caller:
    #: ``site:visitor`` or ``app:name``: the rate-limit and dedupe identity.
    who: str
    site: str
    visitor: str


@dataclass
class WebAuth:
    sites: dict[str, Site]
    #: API key -> app name.
    apps: dict[bytes, str] = field(default_factory=dict)

    def caller(self, credential: str | None, key: str, *, now: float | None = None) -> Caller:
        """Raise 401 unless ``credential`` may write to and read conversation ``key``."""
        if not credential:
            raise BadSignature("missing credential: a visitor token or an app API key (Authorization: Bearer)")
        now = time.time() if now is None else now
        site_name = tokens.site_of(credential)
        if site_name is not None and credential.startswith("v1."):
            site = self.sites.get(site_name)
            if site is None:
                raise BadSignature("invalid visitor token", platform="web")
            visitor = tokens.verify(site.secret, credential, now=now)
            if visitor.conversation_key != key:
                raise BadSignature("this visitor token is for another conversation", platform="web")
            return Caller(f"{visitor.site}:{visitor.visitor}", visitor.site, visitor.visitor)
        app = self._app(credential.encode())
        prefix = f"web:{app}:"
        if app is None or not key.startswith(prefix) or len(key) == len(prefix):
            raise BadSignature("invalid API key for this conversation", platform="web")
        return Caller(f"app:{app}", app, key[len(prefix) :])

    def _app(self, presented: bytes) -> str | None:
        found = None
        for known, name in self.apps.items():  # compare with every key: the time does not tell which matched
            if hmac.compare_digest(known, presented):
                found = name
        return found

    def check_origin(self, origin: str | None, own: str, site: str | None) -> None:
        """A browser's ``Origin`` must be the gateway's own, or one the site allows."""
        if origin is None or origin == own:
            return
        allowed = (
            self.sites[site].allowed_origins
            if site in self.sites
            else frozenset().union(*(s.allowed_origins for s in self.sites.values()))
        )
        if origin not in allowed:
            raise Forbidden(f"origin {origin[:100]!r} is not allowed; add it to [web.sites.*] allowed_origins")
