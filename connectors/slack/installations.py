"""Slack installations and OAuth states in the gateway's store (Redis in production), on slack_sdk's interfaces.

:class:`StoreInstallationStore` is a ``slack_sdk`` ``AsyncInstallationStore`` (what slack-bolt's OAuth flow
saves into and what its token rotation reads), bot-scoped: one record per workspace (or per Enterprise Grid org
for an org-wide install), keyed ``slack:install:{enterprise or -}:{team or -}`` under ``GATEWAY_NAMESPACE``,
the whole record (tokens included) encrypted with :class:`~connectors.slack.tokencrypt.TokenCipher`. Removing a
workspace (``app_uninstalled``, ``tokens_revoked``) leaves a tombstone saying why, so a reply still queued for
it is dead-lettered with that reason instead of going out with the fallback ``SLACK_BOT_TOKEN``; a new install
of the workspace clears it.

:class:`StoreStateStore` is an ``AsyncOAuthStateStore``: a state is issued with an expiry and consumed at most
once, even by two redirects racing on two replicas (the consumption is a set-if-absent in the store).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import datetime
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from connectors.slack.tokencrypt import TokenCipher
from gateway.core.store.base import Store

log = logging.getLogger(__name__)

#: Fields of an installation that belong to its bot (what ``delete_bot`` clears).
_BOT_FIELDS = ("bot_token", "bot_id", "bot_user_id", "bot_scopes", "bot_refresh_token", "bot_token_expires_at")
_USER_FIELDS = ("user_token", "user_scopes", "user_refresh_token", "user_token_expires_at")


def _part(value: str | None) -> str:
    return value or "-"


def install_key(enterprise_id: str | None, team_id: str | None) -> str:
    return f"slack:install:{_part(enterprise_id)}:{_part(team_id)}"


def tombstone_key(enterprise_id: str | None, team_id: str | None) -> str:
    # Slack team ids are unique across enterprises: a reply, which knows only its team, finds it.
    return f"slack:removed:{team_id or _part(enterprise_id)}"


def team_key(team_id: str) -> str:
    """Which enterprise a workspace install belongs to (``-``: none), for a reply that knows only its team."""
    return f"slack:team:{team_id}"


def _timestamp(name: str, value: datetime) -> float | int:
    return int(value.timestamp()) if name.endswith("_expires_at") else value.timestamp()  # what slack_sdk reads back


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """slack_sdk's copy of a record, JSON-ready (its times are datetimes; its constructors take timestamps)."""
    out = {k: _timestamp(k, v) if isinstance(v, datetime) else v for k, v in values.items()}
    out.pop("custom_values", None)
    return out


def _scope(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> tuple[str | None, ...]:
    # An org-wide install is one record for the whole org, whatever team an event came from.
    return (enterprise_id, None) if is_enterprise_install else (enterprise_id, team_id)


class StoreInstallationStore(AsyncInstallationStore):
    def __init__(self, store: Store, cipher: TokenCipher) -> None:
        self._store = store
        self._cipher = cipher

    @property
    def logger(self) -> logging.Logger:
        return log

    # ------------------------------------------------------------------ records
    async def _read(self, enterprise_id: str | None, team_id: str | None) -> dict[str, Any] | None:
        sealed = await self._store.get(install_key(enterprise_id, team_id))
        if sealed is None:
            return None
        record: dict[str, Any] = json.loads(self._cipher.decrypt(sealed))
        return record

    async def _write(self, record: dict[str, Any]) -> None:
        enterprise_id, team_id = _scope(
            record.get("enterprise_id"), record.get("team_id"), record.get("is_enterprise_install")
        )
        await self._store.put(install_key(enterprise_id, team_id), self._cipher.encrypt(json.dumps(record)))
        if team_id:
            await self._store.put(team_key(team_id), _part(enterprise_id))
        await self._store.delete(tombstone_key(enterprise_id, team_id))

    # ------------------------------------------------------------------ AsyncInstallationStore
    async def async_save(self, installation: Installation) -> None:
        await self._write(_plain(installation.to_dict_for_copying()))

    async def async_save_bot(self, bot: Bot) -> None:
        found = await self._read(*_scope(bot.enterprise_id, bot.team_id, bot.is_enterprise_install))
        record = found or {"enterprise_id": bot.enterprise_id, "team_id": bot.team_id}
        fresh = _plain(bot.to_dict_for_copying())
        record.update({k: fresh.get(k) for k in (*_BOT_FIELDS, "app_id", "is_enterprise_install", "installed_at")})
        await self._write(record)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        record = await self._read(*_scope(enterprise_id, team_id, is_enterprise_install))
        if record is None or (user_id is not None and record.get("user_id") != user_id):
            return None
        return Installation(**record)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if installation is None or not installation.bot_token:
            return None
        return installation.to_bot()

    async def find_bot_for_team(self, team_id: str) -> Bot | None:
        """The bot of workspace ``team_id``, inside an Enterprise Grid org or not."""
        enterprise = await self._store.get(team_key(team_id))
        return await self.async_find_bot(
            enterprise_id=None if enterprise in (None, "-") else enterprise, team_id=team_id
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        record = await self._read(enterprise_id, team_id)
        if record is not None:
            await self._clear(record, _BOT_FIELDS)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        record = await self._read(enterprise_id, team_id)
        if record is not None and (user_id is None or record.get("user_id") == user_id):
            await self._clear(record, _USER_FIELDS)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._store.delete(install_key(enterprise_id, team_id), *([team_key(team_id)] if team_id else []))

    async def _clear(self, record: dict[str, Any], fields: tuple[str, ...]) -> None:
        for name in fields:
            record[name] = None
        key = install_key(
            *_scope(record.get("enterprise_id"), record.get("team_id"), record.get("is_enterprise_install"))
        )
        if record.get("bot_token") or record.get("user_token"):
            await self._store.put(key, self._cipher.encrypt(json.dumps(record)))
        else:
            team_id = record.get("team_id")
            await self._store.delete(key, *([team_key(team_id)] if team_id else []))

    # ------------------------------------------------------------------ removals
    async def mark_removed(self, enterprise_id: str | None, team_id: str | None, reason: str) -> None:
        """Say why this workspace has no bot token any more (read back by :meth:`removed`)."""
        await self._store.put(tombstone_key(enterprise_id, team_id), json.dumps({"reason": reason, "at": time.time()}))

    async def removed(self, enterprise_id: str | None, team_id: str | None) -> str | None:
        raw = await self._store.get(tombstone_key(enterprise_id, team_id))
        return None if raw is None else str(json.loads(raw).get("reason") or "removed")


class StoreStateStore(AsyncOAuthStateStore):
    """OAuth ``state`` values: random, expiring, single-use."""

    def __init__(self, store: Store, expiration_seconds: float = 600.0) -> None:
        self._store = store
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        await self._store.put(f"slack:oauth_state:{state}", "1", ttl=self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state or len(state) > 128:
            return False
        key = f"slack:oauth_state:{state}"
        if await self._store.get(key) is None:
            return False  # never issued, expired, or already used
        # Two redirects with one state (a replay racing the original): the first claim wins.
        won = await self._store.claim(f"slack:oauth_state_used:{state}", "1", self.expiration_seconds) is None
        await self._store.delete(key)
        return won
