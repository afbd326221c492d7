"""Local fake platform API servers (Slack, Telegram, OpenAI, webhook receiver).

They speak the real wire format so tests drive the real clients (slack_sdk ``AsyncWebClient``,
python-telegram-bot ``Bot``, openai ``AsyncOpenAI``) against them. See each module's docstring.

Exports are resolved lazily so ``python -m tests.fakes.slack_api`` does not import the module
twice (runpy warns when a package's ``__init__`` already imported the module being run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.base import Call, ChatFake, FakeServer, Injection
    from tests.fakes.openai_api import (
        FakeOpenAI,
        ModelReply,
        echo_handler,
        text_reply,
        tool_call_reply,
    )
    from tests.fakes.process import FakeProcess, run_fake
    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.telegram_api import FakeTelegram
    from tests.fakes.webhook_receiver import ReceivedWebhook, WebhookReceiver

_EXPORTS: dict[str, str] = {
    "Call": "base",
    "ChatFake": "base",
    "FakeServer": "base",
    "Injection": "base",
    "FakeSlack": "slack_api",
    "FakeTelegram": "telegram_api",
    "FakeOpenAI": "openai_api",
    "ModelReply": "openai_api",
    "echo_handler": "openai_api",
    "text_reply": "openai_api",
    "tool_call_reply": "openai_api",
    "WebhookReceiver": "webhook_receiver",
    "ReceivedWebhook": "webhook_receiver",
    "FakeProcess": "process",
    "run_fake": "process",
}

__all__ = [
    "Call",
    "ChatFake",
    "FakeOpenAI",
    "FakeProcess",
    "FakeServer",
    "FakeSlack",
    "FakeTelegram",
    "Injection",
    "ModelReply",
    "ReceivedWebhook",
    "WebhookReceiver",
    "echo_handler",
    "run_fake",
    "text_reply",
    "tool_call_reply",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
