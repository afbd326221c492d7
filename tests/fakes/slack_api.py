"""Fake Slack Web API speaking the real wire format.

Use with the real client::

    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)  # ends with "/api/"
        await client.chat_postMessage(channel="C1", text="hi", thread_ts="1.2")

What slack_sdk 3.x actually sends (verified in tests/integration/test_fakes.py):
``chat.postMessage``/``chat.update``/``chat.postEphemeral``/``assistant.threads.setStatus`` POST a
JSON body; ``auth.test``/``reactions.add`` POST with the arguments in the *query string* and no
body; the token always travels as ``Authorization: Bearer``. The fake also accepts form bodies
and a ``token`` argument, as Slack does.

Across workspaces (``tests/fakes/slack_workspaces.py``): ``fake.workspaces.add("TA", "Team A", ["CA1"])``,
``GET /oauth/v2/authorize`` (the browser's stop at Slack: redirects to ``redirect_uri`` with a ``code`` for
``team``), ``oauth.v2.access`` (codes and refresh tokens single-use, client credentials checked), per-token
auth (team A's token cannot post to team B's channel), ``fake.workspaces.revoke(team)``. ``posts`` keeps the
token each accepted ``chat.postMessage`` came with. The single ``token`` keeps working for any channel.

Assistant threads and agent sessions (checked against docs.slack.dev, December 2026):
``assistant.threads.setStatus`` / ``setSuggestedPrompts`` / ``setTitle`` and ``agents.sessions.setStatus`` /
``rename`` answer ``channel_not_found`` for a channel and ``invalid_thread_ts`` for a thread the fake has not
seen (a thread is seen when a message is posted in it, or when a test says the user opened it with
:meth:`FakeSlack.open_thread`), and ``invalid_arguments`` for what the docs refuse (more than 10 loading
messages or 4 prompts, an unknown session status, an empty title). ``statuses`` keeps each thread's current
assistant status (a post in the thread clears it, as Slack does), ``sessions`` each agent session's status,
``titles`` and ``prompts`` the last ones set; ``status_log`` every status change in order.

Streaming (followed: docs.slack.dev reference for ``chat.startStream``/``chat.appendStream``/``chat.stopStream``,
as slack_sdk 3.48's ``AsyncWebClient.chat_startStream`` etc. call them, JSON bodies): ``startStream`` needs
``channel`` and ``thread_ts`` (a streamed message is always a reply) and answers ``ts``; ``appendStream`` adds
``markdown_text`` (at most 12,000 characters a call) to a streaming message, ``stopStream`` ends it (with an
optional last ``markdown_text``). Both refuse an unknown ``ts`` (``message_not_found``) and a stream that has
stopped (``message_not_in_streaming_state``). ``fake.streaming = False`` (or ``POST /_config
{"streaming": false}``) makes the three methods ``unknown_method``, as for an app or workspace without them.
``chat.update`` refuses a message that does not exist (``message_not_found``). Every visible change is in
``timeline`` (tests/fakes/base.py ``Shown``).

Message metadata (followed: docs.slack.dev "Using message metadata", the ``metadata`` argument of
``chat.postMessage`` and ``include_all_metadata`` of ``conversations.replies``/``conversations.history``, checked
2026-12): ``metadata`` must be an object (or its JSON) with a string ``event_type`` and an object
``event_payload``, else ``invalid_metadata_format``; an ``event_type`` with other characters than letters, digits,
``_`` and ``-`` is dropped and the post answered with the warning ``invalid_metadata_schema``, as Slack does. The
metadata is kept on the message and returned by ``conversations.replies``/``conversations.history`` only with
``include_all_metadata``. Both read methods honour ``oldest``/``latest`` (exclusive unless ``inclusive``),
``limit`` and cursors (``has_more``, ``response_metadata.next_cursor``); ``conversations.history`` returns the
channel's messages outside threads (and thread roots), newest first. No size limit of metadata is documented
there, so the fake sets none.

Run standalone: ``python -m tests.fakes.slack_api --port 0 --token xoxb-test`` prints
``READY http://127.0.0.1:PORT/api/``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.base import ChatFake, json_response, read_request_args, run_token_cli
from tests.fakes.slack_workspaces import Workspaces

__all__ = ["FakeSlack"]

# Arguments Slack accepts as JSON-encoded strings in form/query encodings.
_JSON_STRING_ARGS = frozenset({"blocks", "attachments", "metadata", "unfurl_links_payload"})
#: What an ``event_type`` may hold (docs.slack.dev "Using message metadata").
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_-]+")


class FakeSlack(ChatFake):
    """Fake ``https://slack.com/api/`` for ``slack_sdk.web.async_client.AsyncWebClient``.

    ``messages``: the arguments of every accepted ``chat.postMessage``; ``reactions``: of every
    accepted ``reactions.add``.
    """

    name = "FakeSlack"

    BOT_USER_ID = "UBOT"
    BOT_ID = "BBOT"
    TEAM_ID = "T111"
    TEAM = "Gateway Test"
    USER = "gateway-bot"

    def __init__(self, token: str = "xoxb-test", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self._ts_counter = 0
        self._posted: dict[tuple[str, str], dict[str, Any]] = {}
        self.workspaces = Workspaces()
        #: (token, arguments) of every accepted chat.postMessage.
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self._threads: set[tuple[str, str]] = set()
        #: (channel, thread_ts) -> the assistant status shown now ("" once cleared).
        self.statuses: dict[tuple[str, str], str] = {}
        #: (channel, thread_ts) -> the agent session's status.
        self.sessions: dict[tuple[str, str], str] = {}
        self.titles: dict[tuple[str, str], str] = {}
        self.prompts: dict[tuple[str, str], dict[str, Any]] = {}
        #: (method, channel, thread_ts, status) of every accepted status change, in order.
        self.status_log: list[tuple[str, str, str, str]] = []
        #: chat.startStream/appendStream/stopStream exist (False: unknown_method).
        self.streaming = True
        #: (channel, ts) of the messages whose stream is open.
        self._open_streams: set[tuple[str, str]] = set()

    def open_thread(self, channel: str, thread_ts: str) -> None:
        """The user opened an assistant thread (or wrote the message that roots one): Slack knows it."""
        self._threads.add((channel, thread_ts))

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/api/"

    def reset(self) -> None:
        super().reset()
        self._posted.clear()
        self.posts.clear()
        for kept in (self._threads, self.statuses, self.sessions, self.titles, self.prompts):
            kept.clear()
        self.status_log.clear()
        self._open_streams.clear()

    def created(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages in a thread (posted or streamed), in order: one per answer is the goal."""
        return [m for (c, _), m in self._posted.items() if c == channel and m.get("thread_ts") == thread_ts]

    # ------------------------------------------------------------------ wire format
    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        app.router.add_post("/_config", self._config)

    async def _config(self, request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        self.streaming = bool(spec.get("streaming", self.streaming))
        return json_response({"ok": True, "streaming": self.streaming})

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        """Slack's consent page, approved at once: back to ``redirect_uri`` with a code and the state."""
        q = request.query
        await self.record("oauth.v2.authorize", dict(q), dict(request.headers))
        if q.get("client_id") != self.workspaces.client_id:
            return web.Response(status=400, text="invalid_client_id")
        team = q.get("team") or next(iter(self.workspaces.teams), "")
        if team not in self.workspaces.teams or not q.get("redirect_uri"):
            return web.Response(status=400, text="unknown team or no redirect_uri")
        code = self.workspaces.issue_code(team, q["redirect_uri"], q.get("scope", ""))
        back = q["redirect_uri"] + ("&" if "?" in q["redirect_uri"] else "?")
        raise web.HTTPFound(back + urlencode({"code": code, "state": q.get("state", "")}))

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        # tests/fixtures/slack_429_response.json
        return json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return json_response({"ok": False, "error": "fatal_error"}, status=status)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await read_request_args(request, _maybe_json)
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]

        if method == "oauth.v2.access":  # client credentials, no token
            answer = self.workspaces.access(args, auth)
            return await self.handle(request, method, args, lambda: json_response(answer))

        def check_auth() -> web.StreamResponse | None:
            if not token:
                return json_response({"ok": False, "error": "not_authed"})
            error = None if token == self.token else self.workspaces.auth_error(token)
            return json_response({"ok": False, "error": error}) if error else None

        return await self.handle(
            request, method, args, lambda: self._dispatch(method, args, token or ""), check_auth=check_auth
        )

    def _dispatch(self, method: str, args: dict[str, Any], token: str = "") -> web.StreamResponse:
        team = self.workspaces.team_of(token)
        if team is not None:  # a workspace's token: only its own channels, and auth.test says who it is
            channel = str(args.get("channel") or args.get("channel_id") or "")
            owner = self.workspaces.channel_owner(channel)
            if channel and owner is not None and owner != team.team_id:
                return json_response({"ok": False, "error": "channel_not_found"})
            if method == "auth.test":
                return json_response(
                    {
                        "ok": True,
                        "url": f"https://{team.team_id.lower()}.slack.com/",
                        "team": team.name,
                        "user": "gateway-bot",
                        "team_id": team.team_id,
                        "user_id": team.bot_user_id,
                        "bot_id": team.bot_id,
                        "is_enterprise_install": False,
                    }
                )
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "reactions.add": self._reactions_add,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "agents.sessions.setStatus": self._session_set_status,
            "agents.sessions.rename": self._session_rename,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            **(
                {
                    "chat.startStream": self._chat_start_stream,
                    "chat.appendStream": self._chat_append_stream,
                    "chat.stopStream": self._chat_stop_stream,
                }
                if self.streaming
                else {}
            ),
        }.get(method)
        if handler is None:
            return json_response({"ok": False, "error": "unknown_method"})
        answer = handler(args)
        if method == "chat.postMessage" and answer.get("ok"):
            self.posts.append((token, args))
        return json_response(answer)

    def _next_ts(self) -> str:
        # Like Slack's: the time of posting in microseconds, unique per channel (here: across the fake).
        self._ts_counter = max(self._ts_counter + 1, int(time.time() * 1_000_000))
        return f"{self._ts_counter // 1_000_000}.{self._ts_counter % 1_000_000:06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://gateway-test.slack.com/",
            "team": self.TEAM,
            "user": self.USER,
            "team_id": self.TEAM_ID,
            "user_id": self.BOT_USER_ID,
            "bot_id": self.BOT_ID,
            "is_enterprise_install": False,
        }

    def _message_error(self, args: dict[str, Any]) -> str | None:
        if not args.get("channel"):
            return "channel_not_found"
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return "no_text"
        return None

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._message_error(args)
        if error:
            return {"ok": False, "error": error}
        metadata, warning = _checked_metadata(args.get("metadata"))
        if warning == "invalid_metadata_format":
            return {"ok": False, "error": warning}
        channel = str(args["channel"])
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "text": args.get("text") or "",
            "user": self.BOT_USER_ID,
            "bot_id": self.BOT_ID,
            "team": self.TEAM_ID,
            "ts": ts,
        }
        self._threads.add((channel, ts))
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
            where = (channel, str(args["thread_ts"]))
            self._threads.add(where)
            if self.statuses.get(where):  # Slack removes the status when the app posts in the thread
                self.statuses[where] = ""
        for key in ("blocks", "attachments"):
            if args.get(key):
                message[key] = args[key]
        if metadata is not None:
            message["metadata"] = metadata
        self._posted[(channel, ts)] = message
        self._messages.append(args)
        self.show(channel, ts, message["text"])
        answer: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": message}
        if warning:
            answer["warning"] = warning
        return answer

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The bot's messages of a thread (the fake keeps no others), oldest first."""
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "thread_not_found"}
        found = [
            m
            for (c, mts), m in sorted(self._posted.items(), key=lambda kv: float(kv[0][1]))
            if c == channel and (m.get("thread_ts") == ts or mts == ts)
        ]
        return _page(found, args, default_limit=1000)

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """The channel's messages outside threads (and thread roots), newest first."""
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        found = [
            m
            for (c, mts), m in sorted(self._posted.items(), key=lambda kv: -float(kv[0][1]))
            if c == channel and m.get("thread_ts", mts) == mts
        ]
        return _page(found, args, default_limit=100)

    def _chat_start_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        text = str(args.get("markdown_text") or "")
        if len(text) > 12_000:
            return {"ok": False, "error": "msg_too_long"}
        channel, ts = str(args["channel"]), self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "text": text,
            "user": self.BOT_USER_ID,
            "bot_id": self.BOT_ID,
            "team": self.TEAM_ID,
            "ts": ts,
            "thread_ts": str(args["thread_ts"]),
        }
        self._posted[(channel, ts)] = message
        self._open_streams.add((channel, ts))
        where = (channel, str(args["thread_ts"]))
        self._threads.update({where, (channel, ts)})
        if self.statuses.get(where):  # the app posted in the thread: Slack removes the status
            self.statuses[where] = ""
        self.show(channel, ts, text, final=False)
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming_message(self, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        message = self._posted.get((channel, ts))
        if message is None:
            return None, "message_not_found"
        if (channel, ts) not in self._open_streams:
            return None, "message_not_in_streaming_state"
        return message, None

    def _chat_append_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message, error = self._streaming_message(args)
        if message is None:
            return {"ok": False, "error": error}
        text = str(args.get("markdown_text") or "")
        if not text:
            return {"ok": False, "error": "no_text"}
        if len(text) > 12_000:
            return {"ok": False, "error": "msg_too_long"}
        message["text"] += text
        self.show(args["channel"], args["ts"], message["text"], final=False)
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _chat_stop_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message, error = self._streaming_message(args)
        if message is None:
            return {"ok": False, "error": error}
        message["text"] += str(args.get("markdown_text") or "")
        self._open_streams.discard((str(args["channel"]), str(args["ts"])))
        self.show(args["channel"], args["ts"], message["text"])
        return {"ok": True, "channel": args["channel"], "ts": args["ts"], "message": message}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        channel, ts = str(args["channel"]), str(args.get("ts") or "")
        message = self._posted.get((channel, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return {"ok": False, "error": "no_text"}
        message["text"] = args.get("text") or ""
        message["edited"] = {"user": self.BOT_USER_ID, "ts": self._next_ts()}
        for key in ("blocks", "attachments"):
            if key in args:
                message[key] = args[key]
        self.show(channel, ts, message["text"])
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._message_error(args)
        if error:
            return {"ok": False, "error": error}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("timestamp"):
            return {"ok": False, "error": "no_item_specified"}
        if not args.get("name"):
            return {"ok": False, "error": "invalid_name"}
        key = (args["channel"], args["timestamp"], args["name"])
        if any((r["channel"], r["timestamp"], r["name"]) == key for r in self._reactions):
            return {"ok": False, "error": "already_reacted"}
        self._reactions.append(args)
        return {"ok": True}

    def _thread_error(self, args: dict[str, Any]) -> str | None:
        channel, thread = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if not channel or all(c != channel for c, _ in self._threads):
            return "channel_not_found"
        if (channel, thread) not in self._threads:
            return "invalid_thread_ts"
        return None

    @staticmethod
    def _where(args: dict[str, Any]) -> tuple[str, str]:
        return str(args["channel_id"]), str(args["thread_ts"])

    def _assistant_set_status(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._thread_error(args)
        status, loading = args.get("status"), args.get("loading_messages") or []
        if error is None and (not isinstance(status, str) or not isinstance(loading, list) or len(loading) > 10):
            error = "invalid_arguments"
        if error:
            return {"ok": False, "error": error}
        self.statuses[self._where(args)] = str(status)
        self.status_log.append(("assistant.threads.setStatus", *self._where(args), str(status)))
        return {"ok": True}

    def _assistant_set_prompts(self, args: dict[str, Any]) -> dict[str, Any]:
        # thread_ts is optional here: without it the prompts go to the channel's latest message
        channel = str(args.get("channel_id") or "")
        latest = max((t for c, t in self._threads if c == channel), default="", key=float)
        error = self._thread_error(args if args.get("thread_ts") else {**args, "thread_ts": latest})
        prompts = args.get("prompts")
        valid = isinstance(prompts, list) and 1 <= len(prompts) <= 4
        valid = valid and all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts or [])
        if error is None and not valid:
            error = "invalid_arguments"
        if error:
            return {"ok": False, "error": error}
        self.prompts[(channel, str(args.get("thread_ts") or latest))] = {"prompts": prompts, "title": args.get("title")}
        return {"ok": True}

    def _title(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._thread_error(args)
        title = args.get("title")
        if error is None and not (isinstance(title, str) and 1 <= len(title.strip()) <= 200):
            error = "invalid_arguments"
        if error:
            return {"ok": False, "error": error}
        self.titles[self._where(args)] = str(title)
        return {"ok": True}

    def _assistant_set_title(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._title(args)

    def _session_set_status(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._thread_error(args)
        status = args.get("status")
        if error is None and status not in ("active", "processing", "suspended", "closed"):
            error = "invalid_arguments"
        if error:
            return {"ok": False, "error": error}
        self.sessions[self._where(args)] = str(status)
        self.status_log.append(("agents.sessions.setStatus", *self._where(args), str(status)))
        return {"ok": True, "status": status}

    def _session_rename(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._title(args)


def _checked_metadata(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The metadata a post keeps, and the error or warning Slack answers for it."""
    if raw is None or raw == "":
        return None, None
    if not (isinstance(raw, dict) and isinstance(raw.get("event_type"), str)):
        return None, "invalid_metadata_format"
    if not isinstance(raw.get("event_payload"), dict):
        return None, "invalid_metadata_format"
    if not _EVENT_TYPE.fullmatch(raw["event_type"]):
        return None, "invalid_metadata_schema"  # a warning: the message is posted, its metadata ignored
    return {"event_type": raw["event_type"], "event_payload": raw["event_payload"]}, None


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _page(messages: list[dict[str, Any]], args: dict[str, Any], *, default_limit: int) -> dict[str, Any]:
    """One page of ``messages`` (in the method's order) as conversations.replies/history answer it."""
    inclusive = _flag(args.get("inclusive"))
    oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")

    def within(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return (oldest < ts or not args.get("oldest")) and (ts < latest or not args.get("latest"))

    shown = [m for m in messages if within(float(m["ts"]))]
    try:
        limit = max(1, min(int(args.get("limit") or default_limit), 1000))
        start = int(str(args.get("cursor") or "0").removeprefix("next:"))
    except ValueError:
        return {"ok": False, "error": "invalid_cursor"}
    page = shown[start : start + limit]
    with_metadata = _flag(args.get("include_all_metadata"))
    out = [{k: v for k, v in m.items() if with_metadata or k != "metadata"} for m in page]
    more = start + limit < len(shown)
    answer: dict[str, Any] = {"ok": True, "messages": out, "has_more": more}
    answer["response_metadata"] = {"next_cursor": f"next:{start + limit}" if more else ""}
    return answer


def _maybe_json(key: str, value: str) -> Any:
    if key in _JSON_STRING_ARGS and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main(argv: list[str] | None = None) -> int:
    return run_token_cli(FakeSlack, "xoxb-test", argv)


if __name__ == "__main__":
    raise SystemExit(main())
