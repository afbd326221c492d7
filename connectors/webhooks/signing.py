"""Standard Webhooks signatures.

https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
Signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the key is the
base64-decoded secret without its ``whsec_`` prefix; ``webhook-signature`` is
a space-separated list of ``v1,<base64>`` so senders can rotate keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from connectors.base import check_timestamp, secrets_equal
from gateway.core.errors import BadSignature, ConfigError

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    if not raw:
        raise ConfigError("a Standard Webhooks secret must not be empty")
    try:
        # Secrets are often shared without base64 padding; the reference libraries accept that.
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("a Standard Webhooks secret must be 'whsec_' + base64") from exc


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def verify(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, now: float, window: int = 300) -> str:
    """Return the ``webhook-id`` when any signature matches any key; raise otherwise."""
    msg_id = headers.get("webhook-id")
    if not msg_id:
        raise BadSignature("missing webhook-id header", platform="webhook")
    ts = check_timestamp(headers.get("webhook-timestamp"), now, window, platform="webhook", header="webhook-timestamp")
    given = headers.get("webhook-signature")
    if not given:
        raise BadSignature("missing webhook-signature header", platform="webhook")
    candidates = [s.partition(",")[2] for s in given.split() if s.startswith("v1,")]
    expected = [sign(k, msg_id, ts, body).partition(",")[2] for k in keys]
    # Compare every pair so timing does not reveal which key or position matched.
    matched = False
    for sig in candidates:
        for exp in expected:
            matched |= secrets_equal(sig, exp)
    if not matched:
        raise BadSignature("no webhook-signature matches the body", platform="webhook")
    return msg_id
