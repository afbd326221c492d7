"""Authenticating an activity the Bot Connector sent: the JWT in ``Authorization: Bearer``.

All of "Authentication with the Bot Connector API", Connector to Bot, step 4: the Bearer scheme; a valid
JWT signed (RS256) by a key of the Bot Framework's JWKS whose ``endorsements`` include the activity's
``channelId``; issuer ``https://api.botframework.com``; audience the bot's Microsoft App ID; not expired
(5 minutes of clock skew); its ``serviceurl`` claim equal to the activity's ``serviceUrl`` (the unsigned body
names where replies go, carrying our token: only the claim is proof). Anything else is 401 (the SDKs answer
401 too; the doc's 403 is for a missing endorsement alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from connectors.teams.keys import SigningKey, SigningKeys
from gateway.core.errors import BadSignature

ISSUER = "https://api.botframework.com"
CLOCK_SKEW = 300


def bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme != "Bearer" or not token.strip():
        raise BadSignature("missing 'Authorization: Bearer <JWT>'", platform="teams")
    return token.strip()


def key_id(token: str) -> str:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise BadSignature("the Authorization token is not a JWT", platform="teams") from exc
    if not isinstance(kid, str) or not kid:
        raise BadSignature("the token names no signing key (kid)", platform="teams")
    return kid


def verify_token(token: str, keys: SigningKeys, app_id: str) -> tuple[dict[str, Any], SigningKey]:
    """The token's claims and the key that signed it, or :class:`BadSignature`."""
    key = keys.known(key_id(token))
    if key is None:
        raise BadSignature("the token is signed with a key the Bot Framework does not publish", platform="teams")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(keys.algorithms),
            audience=app_id,
            issuer=ISSUER,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise BadSignature("the token has expired", platform="teams") from exc
    except jwt.InvalidAudienceError as exc:
        raise BadSignature("the token is for another bot (audience is not TEAMS_APP_ID)", platform="teams") from exc
    except jwt.InvalidIssuerError as exc:
        raise BadSignature("the token was not issued by the Bot Framework", platform="teams") from exc
    except jwt.PyJWTError as exc:
        raise BadSignature(f"the token does not verify: {type(exc).__name__}", platform="teams") from exc
    return claims, key


def check_activity(claims: Mapping[str, Any], key: SigningKey, activity: Mapping[str, Any]) -> None:
    """The verified token speaks for this activity: its key is endorsed for the channel, its ``serviceurl``
    claim is the activity's ``serviceUrl``."""
    if key.endorsements and activity.get("channelId") not in key.endorsements:
        raise BadSignature("the signing key is not endorsed for this activity's channelId", platform="teams")
    service_url = claims.get("serviceurl", claims.get("serviceUrl"))
    if not isinstance(service_url, str) or service_url != activity.get("serviceUrl"):
        raise BadSignature("the token's serviceurl claim is not the activity's serviceUrl", platform="teams")
