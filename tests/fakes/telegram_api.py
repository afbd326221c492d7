"""Fake Telegram Bot API speaking the real wire format.

Use with the real client::

    async with FakeTelegram(token="123:ABC") as fake:
        bot = telegram.Bot("123:ABC", base_url=f"{fake.base_url}/bot")
        await bot.initialize()                                   # getMe
        await bot.send_message(chat_id=-100, text="hi", message_thread_id=23)

What python-telegram-bot 22 actually sends (verified in tests/integration/test_fakes.py): every
method is ``POST {base_url}{token}/{method}``; parameters travel as
``application/x-www-form-urlencoded`` (``multipart/form-data`` when uploading files) where strings
are sent raw and every other value (ints, bools, lists, objects) is JSON-encoded. The fake decodes
those back (ints stay ints, ``reaction`` becomes a list ...), and also accepts JSON bodies and
query strings, as Telegram does.

``getUpdates`` long-polls: it returns updates queued with :meth:`FakeTelegram.push_update`, or
``[]`` after the requested ``timeout``.

``sendMessageDraft`` (Bot API 10.0, as python-telegram-bot 22.8's ``Bot.send_message_draft`` sends it): only to
a private chat (a positive ``chat_id``), with a non-zero ``draft_id`` and at most 4,096 characters; the draft
is shown as ``draft:{draft_id}`` in ``timeline`` and is not a message. ``fake.drafts = False`` (or ``POST
/_config {"drafts": false}``) answers it 404, as a Bot API server without the method does.
``editMessageText`` refuses an unknown message and an edit that changes nothing ("message is not modified").
Every visible change is in ``timeline`` (tests/fakes/base.py ``Shown``).

Run standalone: ``python -m tests.fakes.telegram_api --port 0 --token 123:ABC`` prints
``READY http://127.0.0.1:PORT`` (hand ``<that>/bot`` to ``telegram.Bot``).
"""

from __future__ import annotations

import asyncio
import json
import time
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.base import ChatFake, json_response, read_request_args, run_token_cli

__all__ = ["FakeTelegram"]

# Parameters Telegram defines as String: PTB sends them raw, so never JSON-decode them.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "action",
        "emoji",
        "url",
        "secret_token",
        "ip_address",
        "inline_message_id",
        "business_connection_id",
        "callback_query_id",
        "inline_query_id",
        "title",
        "description",
        "name",
        "question",
        "explanation",
        "first_name",
        "last_name",
        "phone_number",
        "address",
        "icon_custom_emoji_id",
        "sticker",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "animation",
        "message_effect_id",
    }
)

_MAX_LONG_POLL = 30.0


class FakeTelegram(ChatFake):
    """Fake ``https://api.telegram.org`` for ``telegram.Bot``.

    ``messages``: the decoded arguments of every accepted ``sendMessage``; ``reactions``: of every
    accepted ``setMessageReaction``.
    """

    name = "FakeTelegram"

    def __init__(self, token: str = "123:ABC", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(prefix) if prefix.isdigit() else 123,
            "is_bot": True,
            "first_name": "Gateway Test Bot",
            "username": "gateway_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.webhook_url = ""
        self._message_id = 1000
        self._sent: dict[tuple[int, int], dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._updates_changed: asyncio.Event | None = None
        self._closing = False
        #: getUpdates requests currently long-polling (wait on it with ``wait_until``).
        self.polling = 0
        #: sendMessageDraft exists (False: 404).
        self.drafts = True

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an Update for ``getUpdates``; assigns ``update_id`` if missing. Returns it."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        self._updates.append(update)
        if self._updates_changed is not None:
            self._updates_changed.set()
        return int(update["update_id"])

    def reset(self) -> None:
        super().reset()
        self._sent.clear()
        self._updates.clear()

    # ------------------------------------------------------------------ wire format
    def add_routes(self, app: web.Application) -> None:
        self._closing = False
        self._updates_changed = asyncio.Event()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_post("/_config", self._config)

    async def _config(self, request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        self.drafts = bool(spec.get("drafts", self.drafts))
        return json_response({"ok": True, "drafts": self.drafts})

    async def before_stop(self) -> None:
        self._closing = True
        if self._updates_changed is not None:
            self._updates_changed.set()

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        # tests/fixtures/telegram_429_response.json
        return json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            },
            status=429,
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return _error(status, _phrase(status))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        token = request.match_info["token"]
        args = await read_request_args(request, _decode)

        def check_auth() -> web.StreamResponse | None:
            return None if token == self.token else _error(401, "Unauthorized")

        return await self.handle(request, method, args, lambda: self._dispatch(method, args), check_auth=check_auth)

    async def _dispatch(self, method: str, args: dict[str, Any]) -> web.StreamResponse:
        name = method.lower()  # Telegram method names are case-insensitive
        if name == "getupdates":
            return _ok(await self._get_updates(args))
        handler = {
            "getme": lambda a: self.bot_user,
            "sendmessage": self._send_message,
            "sendchataction": self._send_chat_action,
            "setmessagereaction": self._set_message_reaction,
            "editmessagetext": self._edit_message_text,
            **({"sendmessagedraft": self._send_message_draft} if self.drafts else {}),
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }.get(name)
        if handler is None:
            return _error(404, "Not Found")
        try:
            return _ok(handler(args))
        except _BadRequest as exc:
            return _error(400, f"Bad Request: {exc}")

    # ------------------------------------------------------------------ methods
    def _chat(self, args: dict[str, Any]) -> dict[str, Any]:
        chat_id = args.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _BadRequest("chat_id is empty")
        if not isinstance(chat_id, int):
            raise _BadRequest("chat not found")
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Test User"}
        chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": "Test Supergroup"}
        if args.get("message_thread_id") is not None:
            chat["is_forum"] = True
        return chat

    def _send_message(self, args: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(args)
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _BadRequest("message text is empty")
        thread_id = args.get("message_thread_id")
        if thread_id == 1:
            raise _BadRequest("message thread not found")
        self._message_id += 1
        message: dict[str, Any] = {
            "message_id": self._message_id,
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if isinstance(args.get("reply_markup"), dict):
            message["reply_markup"] = args["reply_markup"]
        self._sent[(chat["id"], self._message_id)] = message
        self._messages.append(args)
        self.show(chat["id"], self._message_id, text)
        return message

    def _send_message_draft(self, args: dict[str, Any]) -> bool:
        chat = self._chat(args)
        if chat["type"] != "private":
            raise _BadRequest("drafts can be sent only to private chats")
        draft = args.get("draft_id")
        if not isinstance(draft, int) or draft == 0:
            raise _BadRequest("draft_id must be a non-zero integer")
        text = args.get("text") or ""
        if not isinstance(text, str) or len(text) > 4096:
            raise _BadRequest("message is too long")
        self.show(chat["id"], f"draft:{draft}", text, final=False)
        return True

    def _send_chat_action(self, args: dict[str, Any]) -> bool:
        self._chat(args)
        if not args.get("action"):
            raise _BadRequest("action is empty")
        return True

    def _set_message_reaction(self, args: dict[str, Any]) -> bool:
        self._chat(args)
        if not isinstance(args.get("message_id"), int):
            raise _BadRequest("message_id is empty")
        self._reactions.append(args)
        return True

    def _edit_message_text(self, args: dict[str, Any]) -> dict[str, Any] | bool:
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _BadRequest("message text is empty")
        if args.get("inline_message_id"):
            return True
        chat = self._chat(args)
        message = self._sent.get((chat["id"], args.get("message_id", -1)))
        if message is None:
            raise _BadRequest("message to edit not found")
        if message["text"] == text and "reply_markup" not in args:
            raise _BadRequest(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message["text"] = text
        message["edit_date"] = int(time.time())
        self.show(chat["id"], message["message_id"], text)
        return message

    def _set_webhook(self, args: dict[str, Any]) -> bool:
        self.webhook_url = str(args.get("url") or "")
        return True

    def _delete_webhook(self, args: dict[str, Any]) -> bool:
        self.webhook_url = ""
        return True

    def _get_webhook_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}

    async def _get_updates(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        offset = args.get("offset")
        if isinstance(offset, int) and offset > 0:  # confirms everything before offset
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = args.get("limit")
        limit = limit if isinstance(limit, int) and limit > 0 else 100
        timeout = args.get("timeout")
        wait = min(float(timeout), _MAX_LONG_POLL) if isinstance(timeout, int | float) else 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        event = self._updates_changed
        self.polling += 1
        await self.notify()
        try:
            while not self._updates and not self._closing and event is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                event.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    break
        finally:
            self.polling -= 1
        return self._updates[:limit]


class _BadRequest(Exception):
    pass


def _ok(result: Any) -> web.Response:
    return json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return json_response({"ok": False, "error_code": code, "description": description}, status=code)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _decode(key: str, value: str) -> Any:
    """Undo PTB's encoding: strings raw, everything else JSON."""
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def main(argv: list[str] | None = None) -> int:
    return run_token_cli(FakeTelegram, "123:ABC", argv)


if __name__ == "__main__":
    raise SystemExit(main())
