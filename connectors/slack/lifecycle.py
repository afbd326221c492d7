"""``app_uninstalled`` and ``tokens_revoked``: the workspace's tokens are removed before Slack gets its 200.

Events API payloads followed (https://docs.slack.dev/reference/events/app_uninstalled and
.../tokens_revoked, checked 2026-12): the envelope's ``team_id`` (and ``enterprise_id`` on Enterprise Grid)
names the workspace; ``tokens_revoked``'s ``event.tokens`` lists the *user ids* whose ``oauth`` (user) and
``bot`` tokens were revoked. The two may come in either order. The removal is applied at ingress, as the
request's effect (``ConnectorResult.effects``), before the 200: if the store cannot be reached the answer is
503 and Slack sends the event again. A removal older than the workspace's current installation (a retried
``app_uninstalled`` after a reinstall) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from connectors.slack.installations import StoreInstallationStore

log = structlog.get_logger(__name__)
KINDS = frozenset({"app_uninstalled", "tokens_revoked"})


@dataclass(frozen=True)
class Removal:
    kind: str
    enterprise_id: str | None
    team_id: str | None
    event_time: float
    bot: bool  # the bot token goes (app_uninstalled, or a tokens_revoked naming the bot)
    users: tuple[str, ...] = ()


def removal(envelope: dict[str, Any]) -> Removal | None:
    """The removal an ``event_callback`` envelope asks for, or None."""
    event = envelope.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    if kind not in KINDS or not isinstance(event, dict):
        return None
    enterprise = envelope.get("enterprise_id") or None
    team = envelope.get("team_id") or None
    when = float(envelope.get("event_time") or 0)
    if kind == "app_uninstalled":
        return Removal(str(kind), enterprise, team, when, bot=True)
    found = event.get("tokens")
    tokens: dict[str, Any] = found if isinstance(found, dict) else {}
    users = tuple(str(u) for u in (tokens.get("oauth") or []) if isinstance(u, str))
    return Removal(str(kind), enterprise, team, when, bot=bool(tokens.get("bot")), users=users)


async def apply(installations: StoreInstallationStore, r: Removal) -> None:
    current = await installations.async_find_installation(enterprise_id=r.enterprise_id, team_id=r.team_id)
    if current is not None and r.event_time and current.installed_at > r.event_time:
        log.info("slack_removal_ignored", kind=r.kind, team=r.team_id, why="older than the current installation")
        return
    if r.kind == "app_uninstalled":
        await installations.async_delete_all(enterprise_id=r.enterprise_id, team_id=r.team_id)
        await installations.mark_removed(r.enterprise_id, r.team_id, "the app was uninstalled (app_uninstalled)")
    else:
        for user in r.users:
            await installations.async_delete_installation(
                enterprise_id=r.enterprise_id, team_id=r.team_id, user_id=user
            )
        if r.bot:
            await installations.async_delete_bot(enterprise_id=r.enterprise_id, team_id=r.team_id)
            await installations.mark_removed(r.enterprise_id, r.team_id, "its bot token was revoked (tokens_revoked)")
    log.info("slack_workspace_removed", kind=r.kind, team=r.team_id, enterprise=r.enterprise_id, bot=r.bot)
