"""Slack request signing, v0.

https://api.slack.com/authentication/verifying-requests-from-slack
``X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}"))``,
with ``X-Slack-Request-Timestamp`` inside a 5-minute window against replays.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from connectors.base import check_timestamp, secrets_equal
from gateway.core.errors import BadSignature

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, window: int = 300) -> None:
    """Raise :class:`BadSignature` or :class:`StaleTimestamp` unless Slack signed ``body``."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    check_timestamp(timestamp, now, window, platform="slack", header="X-Slack-Request-Timestamp")
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise BadSignature("missing X-Slack-Signature header", platform="slack")
    assert timestamp is not None
    if not secrets_equal(sign(secret, timestamp, body), signature):
        raise BadSignature("X-Slack-Signature does not match the body", platform="slack")
