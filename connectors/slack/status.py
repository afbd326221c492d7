"""What the agent is doing, shown in Slack: the best-effort actions (``typing``, ``status``, ``prompts``,
``title``, ``done``) as Web API calls.

Two surfaces, chosen by ``GATEWAY_SLACK_STATUS`` (docs checked on docs.slack.dev, December 2026):

- ``assistant`` (default; apps with the Agents & AI Apps assistant container): in a DM thread,
  ``assistant.threads.setStatus`` (``channel_id``, ``thread_ts``, ``status``, ``loading_messages`` at most 10)
  while the turn runs; Slack removes the status when the app posts in the thread, or after two minutes;
  the end of a turn sends ``status: ""`` for turns that posted nothing. ``assistant.threads.setTitle``
  and ``assistant.threads.setSuggestedPrompts`` (``prompts``: ``{"title", "message"}``, optional ``title``).
- ``agent`` (apps declared as agents, ``features.agent_view``): ``agents.sessions.setStatus`` with
  ``status: "processing"`` while the turn runs (Slack shows the Stop button, whose click arrives as
  ``agent_session_stopped``) and ``"active"`` when it ends (statuses: active, processing, suspended,
  closed); ``agents.sessions.rename`` for the title. Prompts still go through
  ``assistant.threads.setSuggestedPrompts``, without ``thread_ts``: its reference page says that argument
  is for the legacy assistant experience only and makes the call "silently fail" for an agent app.
- ``off``: no status calls; titles and prompts that an agent sets explicitly still go out.

Everything is scoped to a thread: a message without one shows nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from gateway.core.events import OutboundMessage

StatusMode = Literal["assistant", "agent", "off"]
SESSION_STATUSES = frozenset({"active", "processing", "suspended", "closed"})
THINKING = "is thinking…"


def _assistant_thread(message: OutboundMessage) -> bool:
    """Assistant threads live in the app's DM (channel ids of DMs start with D)."""
    return message.to.channel.startswith("D")


def _assistant_status(message: OutboundMessage) -> dict[str, Any] | None:
    if not _assistant_thread(message):
        return None
    if message.action == "done":
        return {"status": ""}
    text = message.text if message.action == "status" and message.text else THINKING
    args: dict[str, Any] = {"status": text}
    if message.extra.get("loading_messages"):
        args["loading_messages"] = list(message.extra["loading_messages"])[:10]
    return args


def _session_status(message: OutboundMessage) -> dict[str, Any]:
    if message.action == "done":
        return {"status": "active"}
    text = message.text.strip().lower() if message.action == "status" else ""
    return {"status": text if text in SESSION_STATUSES else "processing"}


def call_for(mode: StatusMode, message: OutboundMessage) -> tuple[str, dict[str, Any]] | None:
    """The Web API method and its arguments for a best-effort action, or None: nothing to show."""
    to = message.to
    if message.action == "prompts":
        prompts = message.extra.get("prompts") or []
        title = {"title": message.extra["title"]} if message.extra.get("title") else {}
        if mode == "agent":
            return "assistant.threads.setSuggestedPrompts", {"channel_id": to.channel, "prompts": prompts} | title
        if not to.thread:
            return None
        where = {"channel_id": to.channel, "thread_ts": to.thread}
        return "assistant.threads.setSuggestedPrompts", where | {"prompts": prompts} | title
    if not to.thread:
        return None
    where = {"channel_id": to.channel, "thread_ts": to.thread}
    if message.action == "title":
        if mode == "agent":
            return "agents.sessions.rename", where | {"title": message.text}
        return "assistant.threads.setTitle", where | {"title": message.text}
    if mode == "agent":
        return "agents.sessions.setStatus", where | _session_status(message)
    if mode == "assistant":
        args = _assistant_status(message)
        return ("assistant.threads.setStatus", where | args) if args is not None else None
    return None
