"""Installing the Slack app in many workspaces: ``GET /slack/install`` and ``GET /slack/oauth_redirect``.

The flow is slack-bolt's ``AsyncOAuthFlow`` (the reason slack-bolt is a dependency): it issues the ``state``,
binds it to the browser with a cookie, redirects to ``https://slack.com/oauth/v2/authorize`` with
``client_id``, ``scope``, ``state`` (and ``redirect_uri``, ``team`` when given), and on the way back checks the
cookie and consumes the state, exchanges the ``code`` through ``oauth.v2.access`` (slack_sdk's
``AsyncWebClient`` against ``SLACK_API_URL``), reads the bot id with ``auth.test`` and saves the installation,
refresh token and expiry included. What is ours: the stores (``connectors/slack/installations.py``: Redis,
encrypted, single-use states), the answers (400 for a missing cookie or code, 403 for a forged, expired or
replayed state or a declined install, 502/503 when Slack or the store cannot be reached; never a 500), and
that none of it exists without ``SLACK_CLIENT_ID``, ``SLACK_CLIENT_SECRET`` and
``GATEWAY_TOKEN_ENCRYPTION_KEY`` (the routes answer 404).

Followed: https://docs.slack.dev/authentication/installing-with-oauth and
https://docs.slack.dev/reference/methods/oauth.v2.access (checked 2026-12).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from connectors.platform import Parts
from connectors.slack.installations import StoreInstallationStore, StoreStateStore
from connectors.slack.tokencrypt import TokenCipher
from connectors.slack.tokens import WorkspaceTokens
from gateway.core.errors import StoreUnavailable
from gateway.core.settings import Settings
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600
#: Bolt's failure reasons, and what we answer them with.
_STATUS = {"invalid_browser": 400, "missing_code": 400, "invalid_code": 400, "invalid_state": 403}


def missing_settings(settings: Settings) -> list[str]:
    """Which of the three settings that enable installs are unset."""
    values = {
        "SLACK_CLIENT_ID": settings.slack_client_id,
        "SLACK_CLIENT_SECRET": settings.slack_client_secret,
        "GATEWAY_TOKEN_ENCRYPTION_KEY": settings.token_encryption_key,
    }
    return [name for name, value in values.items() if not value]


def oauth_configured(settings: Settings) -> bool:
    return not missing_settings(settings)


def installation_store(settings: Settings, store: Store) -> StoreInstallationStore | None:
    if not oauth_configured(settings) or settings.token_encryption_key is None:
        return None
    return StoreInstallationStore(store, TokenCipher(settings.token_encryption_key))


def workspace_tokens(settings: Settings, store: Store) -> WorkspaceTokens | None:
    """The per-workspace token source of the sender, or None for the single-token setup."""
    installations = installation_store(settings, store)
    if installations is None or settings.slack_client_id is None or settings.slack_client_secret is None:
        return None
    rotator = AsyncTokenRotator(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        client=AsyncWebClient(base_url=settings.slack_api_url, retry_handlers=[]),
    )
    fallback = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token is not None else None
    return WorkspaceTokens(
        installations, store, rotator=rotator, fallback=fallback, rotate_before=settings.slack_rotate_before
    )


def _page(status: int, title: str, text: str) -> BoltResponse:
    body = f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
    body += f"<p>{html.escape(text)}</p>"
    return BoltResponse(status=status, body=body, headers={"Content-Type": "text/html; charset=utf-8"})


async def _installed(args: AsyncSuccessArgs) -> BoltResponse:
    inst = args.installation
    log.info("slack_installed", team=inst.team_id, enterprise=inst.enterprise_id, rotating=bool(inst.bot_refresh_token))
    name = inst.team_name or inst.team_id or inst.enterprise_name or "the workspace"
    return _page(200, "Installed", f"The app is installed in {name}. You can close this page.")


async def _refused(args: AsyncFailureArgs) -> BoltResponse:
    reason = str(args.reason)[:100]  # from the query string (Slack's error=) when the install was declined
    status = _STATUS.get(reason, 403 if args.suggested_status_code == 200 else 503)
    log.info("slack_install_refused", reason=reason, status=status)
    if reason == "invalid_state":
        text = "This installation link is forged, expired or already used. Start again from /slack/install."
    elif reason == "invalid_browser":
        text = "This browser did not start the installation (its state cookie is missing). Start again."
    elif status == 503:
        text = "The installation could not be saved; try again."
    else:
        text = f"The installation did not complete: {reason}."
    return _page(status, "Not installed", text)


@dataclass
class SlackOAuth:
    flow: AsyncOAuthFlow
    installations: StoreInstallationStore


def build_oauth(parts: Parts) -> SlackOAuth | None:
    settings, store = parts.settings, parts.store
    if store is None:
        return None
    installations = installation_store(settings, store)
    if installations is None or settings.slack_client_secret is None:
        return None
    flow = AsyncOAuthFlow(
        client=AsyncWebClient(base_url=settings.slack_api_url, retry_handlers=[]),
        settings=AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value(),
            scopes=[s.strip() for s in settings.slack_scopes.split(",") if s.strip()],
            redirect_uri=settings.slack_redirect_uri,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            install_page_rendering_enabled=False,  # straight to Slack (302)
            authorization_url=settings.slack_authorize_url,
            installation_store=installations,
            installation_store_bot_only=True,
            state_store=StoreStateStore(store, STATE_SECONDS),
            state_expiration_seconds=STATE_SECONDS,
            callback_options=AsyncCallbackOptions(success=_installed, failure=_refused),
        ),
    )
    return SlackOAuth(flow, installations)


def _guarded(
    run: Callable[[web.Request], Awaitable[web.Response]], what: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await run(request)
        except StoreUnavailable as exc:
            log.warning("slack_oauth_unavailable", step=what, error=str(exc))
            return web.Response(status=503, text="the installation store is unavailable; try again")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack_oauth_unreachable", step=what, error=repr(exc)[:300])
            return web.Response(status=502, text="Slack could not be reached; try again")
        except Exception as exc:  # a bug or an answer of Slack we did not expect: never a 500
            log.warning("slack_oauth_failed", step=what, error=f"{type(exc).__name__}: {exc}"[:300])
            return web.Response(status=502, text="the installation failed; try again")

    return handler


def mount(app: web.Application, oauth: SlackOAuth | None) -> None:
    if oauth is None:

        async def disabled(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "ok": False,
                    "error": "Slack installs are not enabled (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and "
                    "GATEWAY_TOKEN_ENCRYPTION_KEY)",
                },
                status=404,
            )

        app.router.add_get(INSTALL_PATH, disabled)
        app.router.add_get(REDIRECT_PATH, disabled)
        return
    flow = oauth.flow

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    app.router.add_get(INSTALL_PATH, _guarded(install, "install"))
    app.router.add_get(REDIRECT_PATH, _guarded(redirect, "redirect"))
