"""Visitor tokens: who a browser is, without accounts, and without letting anyone claim another id.

``v1.<site>.<visitor>.<expiry>.<signature>`` where the signature is
``base64url(HMAC-SHA256(secret, "v1.<site>.<visitor>.<expiry>"))`` without padding. The gateway mints one
for a new visitor; a site's server can mint them itself with the same secret for its logged-in users (like
the identity verification of the big support widgets), so a visitor id cannot be forged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from gateway.core.errors import BadSignature, StaleTimestamp

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TTL = 30 * 86400


@dataclass(frozen=True)
class Visitor:
    site: str
    visitor: str
    expires: int

    @property
    def conversation_key(self) -> str:
        return f"web:{self.site}:{self.visitor}"


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: bytes, site: str, visitor: str | None = None, *, now: float, ttl: int = DEFAULT_TTL) -> str:
    visitor = visitor or secrets.token_urlsafe(12)
    if not NAME.match(site) or not NAME.match(visitor):
        raise ValueError("site and visitor ids are 1-64 of A-Z a-z 0-9 _ -")
    payload = f"v1.{site}.{visitor}.{int(now) + ttl}"
    return f"{payload}.{_sign(secret, payload)}"


def site_of(token: str) -> str | None:
    """The site a token claims (unverified: to pick the secret to verify it with)."""
    parts = token.split(".")
    return parts[1] if len(parts) == 5 and NAME.match(parts[1]) else None


def verify(secret: bytes, token: str, *, now: float) -> Visitor:
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not parts[3].isdigit():
        raise BadSignature("malformed visitor token", platform="web")
    payload, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(_sign(secret, payload), signature):
        raise BadSignature("invalid visitor token", platform="web")
    expires = int(parts[3])
    if expires < now:
        raise StaleTimestamp("the visitor token has expired; get a new one", platform="web")
    return Visitor(parts[1], parts[2], expires)
