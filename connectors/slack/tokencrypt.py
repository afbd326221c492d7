"""Tokens at rest: every installation record is encrypted before it reaches Redis.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with the key in ``GATEWAY_TOKEN_ENCRYPTION_KEY``
(``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``). Several keys,
space separated, rotate the key: the first encrypts, every one decrypts (``MultiFernet``), so a new key is
put first and the old one dropped once every record was rewritten (each token refresh rewrites its record).
A record that no key opens is reported as such, never returned as garbage.
"""

from __future__ import annotations

import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from gateway.core.errors import ConfigError

VARIABLE = "GATEWAY_TOKEN_ENCRYPTION_KEY"


class UnreadableRecord(Exception):
    """A stored record that none of the configured keys decrypts (wrong key, or tampered with)."""


def key_problem(value: str) -> str | None:
    """Why ``value`` is not a usable key list, or None. Never names the value."""
    keys = value.split()
    if not keys:
        return f"{VARIABLE} is blank"
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, binascii.Error):
            which = f"key {i} of {len(keys)}" if len(keys) > 1 else "it"
            return (
                f"{VARIABLE}: {which} is not a Fernet key (32 url-safe base64 bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            )
    return None


class TokenCipher:
    def __init__(self, secret: SecretStr) -> None:
        problem = key_problem(secret.get_secret_value())
        if problem is not None:
            raise ConfigError(problem)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in secret.get_secret_value().split()])

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise UnreadableRecord(f"a stored Slack installation does not decrypt with {VARIABLE}") from exc
