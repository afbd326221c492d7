"""Discord's check on ``POST /discord/interactions``: an Ed25519 signature over timestamp + raw body.

Discord sends ``X-Signature-Ed25519`` (hex of the 64-byte signature) and ``X-Signature-Timestamp``; the signed
message is the timestamp's bytes followed by the raw body, verified with the application's public key (hex of
32 bytes, "Public Key" in the Developer Portal's General Information). A bad signature is 401, and so is a
timestamp outside the replay window (Discord names no window; the gateway's ``GATEWAY_REPLAY_WINDOW``, 300 s,
applies, and the interaction id dedupe covers replays inside it). Discord itself probes the endpoint with
forged signatures when the URL is saved and expects 401 for them.

Followed: Discord developer docs "Interactions: Receiving and Responding", "Security and Authorization"
(API v10), checked 2026-12. Verified with PyNaCl (libsodium), constant time.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from connectors.base import check_timestamp
from gateway.core.errors import BadSignature, ConfigError

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"


def public_key(hex_key: str) -> VerifyKey:
    """The application's public key from ``DISCORD_PUBLIC_KEY``; a value that is not 32 bytes of hex fails at start."""
    try:
        raw = bytes.fromhex(hex_key.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "DISCORD_PUBLIC_KEY is not 64 hex characters: copy the application's Public Key from the Discord "
            "Developer Portal (General Information)"
        )
    return VerifyKey(raw)


def sign(key: SigningKey, timestamp: str, body: bytes) -> str:
    """The ``X-Signature-Ed25519`` Discord sends for ``body`` at ``timestamp`` (tests, ``gateway send``)."""
    return key.sign(timestamp.encode() + body).signature.hex()


def check(key: VerifyKey, headers: Mapping[str, str], body: bytes, now: float, window: int) -> None:
    timestamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise BadSignature("missing X-Signature-Ed25519 header", platform="discord")
    check_timestamp(timestamp, now, window, platform="discord", header="X-Signature-Timestamp")
    try:
        raw = binascii.unhexlify(signature)
    except (binascii.Error, ValueError) as exc:
        raise BadSignature("X-Signature-Ed25519 is not hex", platform="discord") from exc
    if len(raw) != 64:
        raise BadSignature("X-Signature-Ed25519 is not a 64-byte signature", platform="discord")
    try:
        key.verify((timestamp or "").encode() + body, raw)
    except BadSignatureError as exc:
        raise BadSignature("X-Signature-Ed25519 does not match the timestamp and body", platform="discord") from exc
