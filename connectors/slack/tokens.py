"""Which bot token a reply to a Slack workspace goes out with, refreshed once across replicas when it expires.

The workspace's installation (``connectors/slack/installations.py``) when there is one; a workspace removed by
``app_uninstalled``/``tokens_revoked`` is refused with that reason (the reply is dead-lettered); any other
workspace gets ``SLACK_BOT_TOKEN`` when it is set: a single-workspace setup works as before.

Token rotation (https://docs.slack.dev/authentication/using-token-rotation, followed 2026-12): a rotating
installation's ``oauth.v2.access`` answer carries ``expires_in`` (12 h) and a ``refresh_token``; a new access
token comes from ``oauth.v2.access`` with ``grant_type=refresh_token``, and the refresh token it used is spent
(the answer brings the next one). Two replicas refreshing at once would spend it twice and one of them would
lose the installation's only refresh token, so a refresh runs under a lease in the store: the holder re-reads
the installation (someone may just have refreshed it), refreshes with slack_sdk's ``AsyncTokenRotator`` and
saves; the others wait for the lease and read what it stored.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import structlog
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator

from connectors.outbound import TRANSPORT_ERRORS, transport_error
from connectors.slack.installations import StoreInstallationStore
from connectors.slack.tokencrypt import UnreadableRecord
from gateway.core.errors import SendError, StoreUnavailable
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)


class WorkspaceTokens:
    def __init__(
        self,
        installations: StoreInstallationStore,
        store: Store,
        *,
        rotator: AsyncTokenRotator | None = None,
        fallback: str | None = None,
        rotate_before: float = 7200.0,
        lock_ttl: float = 30.0,
        poll: float = 0.05,
    ) -> None:
        self._installations = installations
        self._store = store
        self._rotator = rotator
        self._fallback = fallback
        self._rotate_before = rotate_before
        self._lock_ttl = lock_ttl
        self._poll = poll
        #: Refreshes this process made (the test of "once across replicas" counts them).
        self.refreshed = 0

    def _expiring(self, bot: Bot) -> bool:
        expires = bot.bot_token_expires_at
        return expires is not None and expires - time.time() < self._rotate_before

    async def token_for(self, team: str) -> str:
        try:
            return await self._token_for(team)
        except UnreadableRecord as exc:
            raise SendError(str(exc), platform="slack") from exc
        except StoreUnavailable as exc:  # nothing was sent: the reply may be tried again
            raise SendError(
                f"cannot read workspace {team}'s installation: {exc}", platform="slack", retryable=True
            ) from exc

    async def _token_for(self, team: str) -> str:
        bot = await self._installations.find_bot_for_team(team)
        if bot is None:
            return await self._without_installation(team)
        if self._expiring(bot) and self._rotator is not None and bot.bot_refresh_token:
            bot = await self._refresh(team, bot)
        return str(bot.bot_token)

    async def _without_installation(self, team: str) -> str:
        reason = await self._installations.removed(None, team)
        if reason is not None:
            raise SendError(
                f"Slack workspace {team}: {reason}; its replies are dead-lettered until it installs the app again "
                "(GET /slack/install)",
                platform="slack",
            )
        if self._fallback is not None:
            return self._fallback
        raise SendError(
            f"no Slack installation for workspace {team!r} and SLACK_BOT_TOKEN is not set", platform="slack"
        )

    async def _refresh(self, team: str, seen: Bot) -> Bot:
        lock, owner = f"slack:rotate:{team}", uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_ttl
        while True:
            if await self._store.acquire_lease(lock, owner, self._lock_ttl):
                try:
                    return await self._refresh_locked(team, seen)
                finally:
                    await self._store.release_lease(lock, owner)
            await asyncio.sleep(self._poll)  # another replica is refreshing: read what it stores
            current = await self._installations.find_bot_for_team(team)
            if current is None:
                return Bot(**{**seen.to_dict_for_copying(), "bot_token": await self._without_installation(team)})
            if not self._expiring(current) or time.monotonic() > deadline:
                return current  # past the deadline the token we have may still be valid: Slack says so if not

    async def _refresh_locked(self, team: str, seen: Bot) -> Bot:
        assert self._rotator is not None
        current = await self._installations.find_bot_for_team(team)
        if current is None:
            return Bot(**{**seen.to_dict_for_copying(), "bot_token": await self._without_installation(team)})
        if not self._expiring(current):
            return current  # refreshed by another replica while we waited for the lease
        try:
            rotated = await self._rotator.perform_bot_token_rotation(
                bot=current, minutes_before_expiration=math.ceil(self._rotate_before / 60)
            )
        except SlackTokenRotationError as exc:
            error = exc.api_error.response.get("error")
            raise SendError(f"Slack refused to refresh workspace {team}'s token: {error}", platform="slack") from exc
        except TRANSPORT_ERRORS as exc:
            # Retryable only when the refresh never left (a lost answer may have spent the refresh token).
            raise transport_error(exc, platform="slack", target=f"Slack (refreshing workspace {team}'s token)") from exc
        if rotated is None:
            return current
        await self._installations.async_save_bot(rotated)
        self.refreshed += 1
        log.info("slack_token_refreshed", team=team, expires_at=rotated.bot_token_expires_at)
        return rotated
