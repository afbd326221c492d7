"""Telegram: the webhook secret token, and updates parsed from recorded payloads and variations."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.telegram.connector import SECRET_HEADER, TelegramConnector
from gateway.core.errors import BadSignature, MalformedPayload, NotFound
from gateway.core.events import Event, EventKind
from tests.support.signing import telegram_message
from tests.unit.builders import fixture_bytes, fixture_json, request, telegram_update, to_bytes

TOKEN = "tg-secret-token-123"


@pytest.fixture
def telegram() -> TelegramConnector:
    return TelegramConnector({"default": TOKEN, "support": "other-token"})


def parse(telegram: TelegramConnector, payload: Any, bot: str = "default") -> Event:
    body = payload if isinstance(payload, bytes) else to_bytes(payload)
    token = TOKEN if bot == "default" else "other-token"
    result = telegram.handle(request(bot, body, {SECRET_HEADER: token}))
    assert result.status == 200
    [event] = result.events
    return event


# --- secret token ------------------------------------------------------------------------------


def test_missing_secret_token_is_refused(telegram: TelegramConnector) -> None:
    with pytest.raises(BadSignature) as info:
        telegram.handle(request("default", telegram_message("hi")))
    assert info.value.status == 401


@pytest.mark.parametrize("token", ["wrong", TOKEN[:-1], TOKEN + "x", "other-token"])
def test_wrong_secret_token_is_refused(telegram: TelegramConnector, token: str) -> None:
    with pytest.raises(BadSignature):
        telegram.handle(request("default", telegram_message("hi"), {"X-Telegram-Bot-Api-Secret-Token": token}))


def test_correct_secret_token_gives_an_event(telegram: TelegramConnector) -> None:
    result = telegram.handle(request("default", telegram_message("hi"), {"X-Telegram-Bot-Api-Secret-Token": TOKEN}))
    [event] = result.events
    assert event.platform == "telegram"
    assert event.text == "hi"
    assert event.triggers_turn


def test_each_bot_has_its_own_token(telegram: TelegramConnector) -> None:
    event = parse(telegram, telegram_message("hi"), bot="support")
    assert event.conversation_key == "telegram:support:1111111"
    with pytest.raises(BadSignature):
        telegram.handle(request("support", telegram_message("hi"), {SECRET_HEADER: TOKEN}))


def test_unknown_bot_is_not_found(telegram: TelegramConnector) -> None:
    assert not telegram.handles("nobody")
    with pytest.raises(NotFound) as info:
        telegram.handle(request("nobody", telegram_message("hi"), {SECRET_HEADER: TOKEN}))
    assert info.value.status == 404


# --- parsing -----------------------------------------------------------------------------------


def test_forum_topic_message(telegram: TelegramConnector) -> None:
    event = parse(telegram, fixture_bytes("telegram_forum_message.json"))
    assert event.kind is EventKind.MESSAGE
    assert event.triggers_turn
    assert event.conversation_key == "telegram:default:-1001812257489:23"
    assert event.reply_to.thread == "23"
    assert event.reply_to.channel == "-1001812257489"
    assert event.reply_to.message == "115"
    assert event.delivery_id == "291365960"
    assert event.text == "Tes"


def test_private_command(telegram: TelegramConnector) -> None:
    event = parse(telegram, fixture_bytes("telegram_private_message.json"))
    assert event.kind is EventKind.COMMAND
    assert event.text == "/start"
    assert event.triggers_turn
    assert event.conversation_key == "telegram:default:1111111"
    assert event.reply_to.thread is None
    assert event.delivery_id == "10000"
    assert event.sender is not None
    assert event.sender.id == "1111111"


def test_callback_query_is_an_action(telegram: TelegramConnector) -> None:
    data = fixture_json("telegram_callback_query.json")
    event = parse(telegram, fixture_bytes("telegram_callback_query.json"))
    assert event.kind is EventKind.ACTION
    assert event.text == data["callback_query"]["data"] == "Data from button callback"
    assert event.triggers_turn  # the button's message was the bot's own, the click is a person's
    assert event.sender is not None
    assert event.sender.id == "1111111"
    assert not event.sender.is_bot
    assert event.conversation_key == "telegram:default:1111111"
    assert event.delivery_id == "10001"


def test_reply_in_an_ordinary_group_has_no_thread(telegram: TelegramConnector) -> None:
    update = telegram_update(
        message_thread_id=55,
        reply_to_message={
            "message_id": 55,
            "date": 1693533600,
            "chat": {"id": -1001234, "type": "supergroup", "title": "Group"},
            "text": "earlier",
        },
    )
    event = parse(telegram, update)
    assert event.reply_to.thread is None
    assert event.conversation_key == "telegram:default:-1001234"


def test_general_topic_has_no_thread(telegram: TelegramConnector) -> None:
    update = telegram_update(
        message_thread_id=1,
        is_topic_message=True,
        chat={"id": -1001234, "type": "supergroup", "title": "Forum", "is_forum": True},
    )
    event = parse(telegram, update)
    assert event.reply_to.thread is None
    assert event.conversation_key == "telegram:default:-1001234"


def test_edited_message_is_an_edit(telegram: TelegramConnector) -> None:
    event = parse(telegram, telegram_update(kind="edited_message", edit_date=1693533700))
    assert event.kind is EventKind.EDIT
    assert not event.triggers_turn


def test_bot_author_does_not_trigger(telegram: TelegramConnector) -> None:
    event = parse(telegram, telegram_message("hi from a bot", is_bot=True))
    assert event.skip_reason is not None
    assert not event.triggers_turn


def test_update_without_update_id_is_malformed(telegram: TelegramConnector) -> None:
    update = telegram_update()
    del update["update_id"]
    with pytest.raises(MalformedPayload) as info:
        parse(telegram, update)
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"{nope", b"[]", b"42"], ids=["broken", "array", "number"])
def test_non_object_body_is_malformed(telegram: TelegramConnector, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse(telegram, body)


def test_unknown_update_type_is_other(telegram: TelegramConnector) -> None:
    update = {
        "update_id": 5,
        "my_chat_member": {
            "chat": {"id": -1001234, "type": "supergroup", "title": "Group"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
            "date": 1693533691,
            "old_chat_member": {"status": "left", "user": {"id": 9, "is_bot": True, "first_name": "Bot"}},
            "new_chat_member": {"status": "member", "user": {"id": 9, "is_bot": True, "first_name": "Bot"}},
        },
    }
    event = parse(telegram, update)
    assert event.kind is EventKind.OTHER
    assert not event.triggers_turn
    assert event.delivery_id == "5"
    assert event.raw == update


def test_photo_caption_is_the_text(telegram: TelegramConnector) -> None:
    update = telegram_update(
        text=None, caption="look at this", photo=[{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}]
    )
    event = parse(telegram, update)
    assert event.text == "look at this"
    assert event.kind is EventKind.MESSAGE
    assert event.triggers_turn


def test_message_without_text_does_not_trigger(telegram: TelegramConnector) -> None:
    update = telegram_update(text=None, sticker=None, new_chat_title="Renamed")
    event = parse(telegram, update)
    assert not event.triggers_turn


def test_unknown_fields_are_kept_in_raw(telegram: TelegramConnector) -> None:
    update = telegram_update(some_future_field={"x": 1})
    event = parse(telegram, update)
    assert event.raw["message"]["some_future_field"] == {"x": 1}


def test_wrongly_typed_field_is_malformed(telegram: TelegramConnector) -> None:
    with pytest.raises(MalformedPayload):
        parse(telegram, telegram_update(entities=["not an object"]))
