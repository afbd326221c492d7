"""Fake Bot Framework: the OpenID metadata and JWKS that sign inbound activities, the token endpoint, and the
Bot Connector's conversations API, in their wire formats.

- ``GET /v1/.well-known/openidconfiguration``: ``issuer``, ``jwks_uri``, ``id_token_signing_alg_values_supported``
  (set ``TEAMS_OPENID_METADATA_URL`` to :attr:`FakeBotFramework.metadata_url`).
- ``GET /v1/.well-known/keys``: the RSA public keys, each with ``endorsements`` (``["msteams"]``).
  :meth:`FakeBotFramework.mint` signs an inbound token with one of them, as the Bot Connector would;
  :meth:`rotate` adds a new key (the old one stays published until :meth:`retire`).
- ``POST /botframework.com/oauth2/v2.0/token`` (form, client credentials, scope
  ``https://api.botframework.com/.default``): a token valid ``token_lifetime`` seconds; a wrong client id or
  secret is 401 ``invalid_client`` (set ``TEAMS_TOKEN_URL`` to :attr:`token_url`).
- ``POST /v3/conversations/{conversationId}/activities[/{activityId}]``: needs ``Authorization: Bearer`` with a
  token this fake issued and that has not expired (else 401 "Authorization has been denied for this request.");
  answers 201 ``{"id": "..."}``; an injected rate limit is 429 with ``Retry-After``. ``messages`` keeps every
  accepted ``message`` activity with its ``conversation_id`` and ``reply_to`` (the path's ids, decoded).

Followed: "Authentication with the Bot Connector API" and the Bot Framework REST API v3 reference (2026-12).
Run standalone: ``python -m tests.fakes.botframework --port 0`` prints ``READY <service url>``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.teams.platform import connector_token
from tests.fakes.base import ChatFake, json_response, run_cli

__all__ = ["FakeBotFramework"]

ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class FakeBotFramework(ChatFake):
    name = "FakeBotFramework"

    def __init__(
        self,
        app_id: str = "00000000-0000-0000-0000-000000000001",
        password: str = "fake-client-secret-of-forty-characters!!",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token_lifetime: float = 3599,
    ) -> None:
        super().__init__(host, port)
        self.app_id = app_id
        self.password = password
        self.token_lifetime = token_lifetime
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._tokens: dict[str, float] = {}
        self._serial = 0
        self.rotate()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """The ``serviceUrl`` activities name: where replies go (with its trailing slash, as Teams sends it)."""
        return f"{self.root_url}/"

    @property
    def metadata_url(self) -> str:
        return f"{self.root_url}/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return f"{self.root_url}/botframework.com/oauth2/v2.0/token"

    # ------------------------------------------------------------------ keys and inbound tokens
    def rotate(self) -> str:
        """Publish a new signing key; return its id."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        kid = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324 - x5t-like id
        self._keys[kid] = key
        self.kid = kid
        return kid

    def retire(self, kid: str) -> None:
        del self._keys[kid]

    def private_pem(self, kid: str | None = None) -> bytes:
        return self._keys[kid or self.kid].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def mint(
        self,
        service_url: str | None = None,
        *,
        audience: str | None = None,
        lifetime: float = 3600,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """An inbound ``Authorization`` token as the Bot Connector signs it (``key``: sign with another key)."""
        kid = kid or self.kid
        return connector_token(
            key or self._keys[kid],
            kid,
            app_id=audience or self.app_id,
            service_url=service_url or self.base_url,
            lifetime=lifetime,
        )

    def every_token_expired(self) -> bool:
        """True once no token this fake issued is still valid (tests of token refresh wait on it)."""
        return all(until < time.monotonic() for until in self._tokens.values())

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, private in self._keys.items():
            numbers = private.public_key().public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": kid,
                    "x5t": kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                    "endorsements": ["msteams"],
                }
            )
        return {"keys": keys}

    # ------------------------------------------------------------------ wire format
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._jwks)
        app.router.add_post("/botframework.com/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._activity)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._activity)

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        return json_response(
            {"error": {"code": "Throttled", "message": "Too many requests"}},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    async def _metadata(self, request: web.Request) -> web.StreamResponse:
        body = {
            "issuer": ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{self.root_url}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
        return await self.handle(request, "openid", {}, lambda: json_response(body))

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, "jwks", {}, lambda: json_response(self.jwks()))

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        args = {k: str(v) for k, v in form.items() if k != "client_secret"}

        def answer() -> web.StreamResponse:
            if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
                return json_response({"error": "invalid_request", "error_description": "AADSTS900144"}, status=400)
            if form.get("client_id") != self.app_id or form.get("client_secret") != self.password:
                return json_response(
                    {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."},
                    status=401,
                )
            token = secrets.token_urlsafe(24)
            self._tokens[token] = time.monotonic() + self.token_lifetime
            return json_response(
                {
                    "token_type": "Bearer",
                    "expires_in": int(self.token_lifetime),
                    "ext_expires_in": int(self.token_lifetime),
                    "access_token": token,
                }
            )

        return await self.handle(request, "token", args, answer)

    async def _activity(self, request: web.Request) -> web.StreamResponse:
        conversation = request.match_info["conversation"]
        reply_to = request.match_info.get("reply_to")
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: dict[str, Any] = body if isinstance(body, dict) else {}
        method = "reply" if reply_to else f"send_{args.get('type', '?')}"

        def check_auth() -> web.StreamResponse | None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or self._tokens.get(token, 0.0) < time.monotonic():
                return json_response({"message": "Authorization has been denied for this request."}, status=401)
            return None

        def answer() -> web.StreamResponse:
            if args.get("type") not in ("message", "typing"):
                return json_response({"error": {"code": "BadArgument", "message": "Unknown activity type"}}, 400)
            self._serial += 1
            if args["type"] == "message":
                if not isinstance(args.get("text"), str) or not args["text"]:
                    return json_response({"error": {"code": "BadArgument", "message": "Empty message"}}, 400)
                self._messages.append({"conversation_id": conversation, "reply_to": reply_to, **args})
            return json_response({"id": f"1{self._serial:012d}"}, status=201)

        return await self.handle(request, method, args, answer, check_auth=check_auth)


if __name__ == "__main__":
    raise SystemExit(run_cli(lambda ns: FakeBotFramework(host=ns.host, port=ns.port)))
