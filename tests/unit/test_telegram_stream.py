"""Telegram streams through python-telegram-bot against the fake Bot API: drafts in a private chat then one
sendMessage, post-and-edit in groups or without drafts, long answers split, a stream continued elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from telegram.error import BadRequest

from connectors.streaming import split
from connectors.telegram.sender import TelegramSender
from connectors.telegram.stream import LIMIT, draft_id
from gateway.core.errors import SendError
from gateway.core.events import OutboundMessage, ReplyAddress
from tests.fakes.telegram_api import FakeTelegram
from tests.support.streams import Saved

TOKEN = "123:UNIT"
PRIVATE = ReplyAddress(platform="telegram", bot="default", channel="555")
GROUP = ReplyAddress(platform="telegram", bot="default", channel="-100123", thread="23")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def sender(tg: FakeTelegram) -> AsyncIterator[TelegramSender]:
    s = TelegramSender({"default": TOKEN}, tg.root_url)
    yield s
    await s.close()


async def push(
    sender: TelegramSender, saved: Saved, to: ReplyAddress, text: str, seq: int, *, final: bool = False
) -> None:
    message = OutboundMessage(
        id="ev:a:1", event_id="ev", conversation_key="k", action="stream", to=to, text=text, seq=seq, final=final
    )
    await sender.stream(message, saved.load(), saved)
    await saved.save()


def methods(tg: FakeTelegram) -> list[str]:
    return [c.method for c in tg.calls if c.method != "getMe"]


async def test_a_private_chat_shows_a_growing_draft_then_one_message(tg: FakeTelegram, sender: TelegramSender) -> None:
    saved = Saved()
    for seq, text in enumerate(["Hel", "Hello wor", "Hello world"], 1):
        await push(sender, saved, PRIVATE, text, seq)
    await push(sender, saved, PRIVATE, "Hello world!", 4, final=True)
    draft = f"draft:{draft_id('ev:a:1', 0)}"
    assert [s.text for s in tg.steps(555, draft)] == ["Hel", "Hello wor", "Hello world"]
    (message,) = tg.messages
    assert message["text"] == "Hello world!"
    assert methods(tg) == ["sendMessageDraft"] * 3 + ["sendMessage"]
    assert saved.state.mode == "native"
    assert saved.paced == 4


async def test_a_group_posts_then_edits(tg: FakeTelegram, sender: TelegramSender) -> None:
    saved = Saved()
    await push(sender, saved, GROUP, "Hel", 1)
    await push(sender, saved, GROUP, "Hello", 2)
    await push(sender, saved, GROUP, "Hello", 3, final=True)  # unchanged: no edit ("message is not modified")
    (message,) = tg.messages
    assert message["message_thread_id"] == 23
    mid = saved.state.parts[0].ref
    assert [s.text for s in tg.steps(-100123, mid)] == ["Hel", "Hello"]
    assert methods(tg) == ["sendMessage", "editMessageText"]


async def test_without_drafts_a_private_chat_posts_then_edits(tg: FakeTelegram, sender: TelegramSender) -> None:
    tg.drafts = False
    saved = Saved()
    await push(sender, saved, PRIVATE, "Hel", 1)
    await push(sender, saved, PRIVATE, "Hello there", 2, final=True)
    assert methods(tg) == ["sendMessageDraft", "sendMessage", "editMessageText"]
    assert [m["text"] for m in tg.messages] == ["Hel"]
    assert tg.screen(555) == {saved.state.parts[0].ref: "Hello there"}
    assert saved.state.mode == "edit"


async def test_a_long_answer_is_split_into_messages(tg: FakeTelegram, sender: TelegramSender) -> None:
    saved = Saved()
    words = " ".join(f"word{i}" for i in range(1500))
    await push(sender, saved, GROUP, words[:2000], 1)
    await push(sender, saved, GROUP, words, 2, final=True)
    shown = tg.screen(-100123)
    assert list(shown.values()) == split(words, LIMIT)
    assert "".join(shown.values()) == words
    assert len(tg.messages) == len(shown) > 1


async def test_a_stream_continues_from_its_saved_state(tg: FakeTelegram, sender: TelegramSender) -> None:
    saved = Saved()
    await push(sender, saved, GROUP, "The answer", 1)
    other = TelegramSender({"default": TOKEN}, tg.root_url)
    try:
        await push(other, saved, GROUP, "The answer is 42.", 2, final=True)
    finally:
        await other.close()
    (message,) = tg.messages
    assert tg.screen(-100123) == {saved.state.parts[0].ref: "The answer is 42."}
    assert message["text"] == "The answer"


async def test_the_fake_refuses_what_telegram_refuses(tg: FakeTelegram) -> None:
    bot = telegram.Bot(TOKEN, base_url=f"{tg.root_url}/bot")
    async with bot:
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text(chat_id=555, message_id=99999, text="x")
        sent = await bot.send_message(chat_id=555, text="same")
        with pytest.raises(BadRequest, match=r"(?i)not modified"):
            await bot.edit_message_text(chat_id=555, message_id=sent.message_id, text="same")
        with pytest.raises(BadRequest, match=r"(?i)private chats"):
            await bot.send_message_draft(chat_id=-100123, draft_id=7, text="x")
        with pytest.raises(BadRequest, match=r"(?i)non-zero"):
            await bot.send_message_draft(chat_id=555, draft_id=0, text="x")


async def test_a_refusal_is_a_send_error(tg: FakeTelegram, sender: TelegramSender) -> None:
    saved = Saved()
    with pytest.raises(SendError, match=r"(?i)chat not found"):
        await push(sender, saved, GROUP.model_copy(update={"channel": "@nobody"}), "x", 1, final=True)
