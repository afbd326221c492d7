"""Meta's two checks on ``/whatsapp``: the subscription handshake and the payload signature.

- ``GET /whatsapp?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C``: answer ``C`` when ``T`` is the
  verify token typed into the app dashboard, else 403.
- ``POST /whatsapp``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the app
  secret>``, compared in constant time, else 401. Meta signs no timestamp: the message id dedupe covers replays.

Followed: Meta's Graph API webhooks guide ("Verification Requests", "Event Notifications", Graph API v25.0),
checked 2026-12.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from connectors.base import secrets_equal
from gateway.core.errors import BadSignature, RequestError

SIGNATURE_HEADER = "x-hub-signature-256"
PREFIX = "sha256="


class Forbidden(RequestError):
    """403: the handshake's verify token is not ours (what Meta's docs answer a wrong token with)."""

    status = 403


def sign(app_secret: str, body: bytes) -> str:
    """The header value Meta sends for ``body``."""
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(app_secret: str, headers: Mapping[str, str], body: bytes) -> None:
    given = headers.get(SIGNATURE_HEADER)
    if not given:
        raise BadSignature("missing X-Hub-Signature-256 header", platform="whatsapp")
    if not given.startswith(PREFIX):
        raise BadSignature("X-Hub-Signature-256 is not 'sha256=<hex>'", platform="whatsapp")
    if not secrets_equal(given, sign(app_secret, body)):
        raise BadSignature("X-Hub-Signature-256 does not match the body", platform="whatsapp")


def challenge(verify_token: str, query: Mapping[str, str]) -> str:
    """The ``hub.challenge`` to echo, or :class:`Forbidden`."""
    if query.get("hub.mode") != "subscribe":
        raise Forbidden("hub.mode is not 'subscribe'", platform="whatsapp")
    if not secrets_equal(query.get("hub.verify_token", ""), verify_token):
        raise Forbidden("hub.verify_token does not match WHATSAPP_VERIFY_TOKEN", platform="whatsapp")
    value = query.get("hub.challenge", "")
    if not value or len(value) > 256:
        raise Forbidden("hub.challenge is missing or too long", platform="whatsapp")
    return value
