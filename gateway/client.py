"""Dispatch from code: hand an event to an agent without an HTTP webhook.

    from gateway.client import GatewayClient, slack_thread

    async with GatewayClient.connect() as gw:            # AMQP_URL and REDIS_URL from the environment
        receipt = await gw.dispatch("Daily report is ready", to=slack_thread("C0123"), agent="reporter",
                                    idempotency_key="report-2026-11-21")

The event takes the durable path a webhook takes: routed, deduplicated on the
idempotency key (24 h), published persistently and confirmed before
``dispatch`` returns. The agent answers wherever ``to`` points.

For a web conversation (``to=web_conversation(app, id)``) the answers can be read back as they come::

        async for item in gw.stream("web:acme:user-42", after=last_seen_id):
            print(item["role"], item["text"])               # {"id", "role", "text", "at"}

``stream`` reads the conversation's transcript (the one the web chat and ``/v1`` SSE read), resumes after
``after``, and wakes on the ``{ns}.web`` fanout when a consumer writes to it: at-least-once, with ids.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agents.registry import agent_names
from connectors.web import transcript
from connectors.web.hub import WebHub
from gateway.core.bus.base import Bus
from gateway.core.errors import ConfigError
from gateway.core.events import Event, EventKind, ReplyAddress, Sender, new_id
from gateway.core.ingest import Ingestor, Outcome
from gateway.core.routing import conversation_key
from gateway.core.sessions import check_name
from gateway.core.settings import Settings
from gateway.core.store.base import Store
from gateway.runtime import open_runtime, require_services


@dataclass(frozen=True)
class Receipt:
    event_id: str
    conversation_key: str
    partition: int
    #: True when an event with this idempotency key was already accepted (nothing was published).
    duplicate: bool


def slack_thread(channel: str, thread_ts: str | None = None, *, team: str = "app") -> ReplyAddress:
    return ReplyAddress(platform="slack", bot=team, channel=channel, thread=thread_ts, message=thread_ts)


def telegram_chat(chat_id: int | str, topic: int | None = None, *, bot: str = "default") -> ReplyAddress:
    return ReplyAddress(platform="telegram", bot=bot, channel=str(chat_id), thread=str(topic) if topic else None)


def webhook_customer(source: str, customer: str, *, reply_url: str | None = None) -> ReplyAddress:
    return ReplyAddress(platform="webhook", bot=source, channel=customer, user=customer, reply_url=reply_url)


def web_conversation(app: str, conversation: str) -> ReplyAddress:
    """A conversation of an app on the web platform: key ``web:{app}:{conversation}``."""
    return ReplyAddress(platform="web", bot=app, channel=conversation, user=conversation)


class GatewayClient:
    def __init__(
        self,
        ingestor: Ingestor,
        partition_of: Any,
        agents: set[str] | None = None,
        *,
        bus: Bus | None = None,
        store: Store | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._partition_of = partition_of
        #: The agents a consumer with the same settings serves; ``None`` accepts any name.
        self._agents = agents
        self._bus = bus
        self._store = store
        self._hub: WebHub | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings | None = None) -> AsyncIterator[GatewayClient]:
        settings = settings or Settings()
        require_services(settings, "client")
        async with open_runtime(settings) as rt:
            client = cls(
                rt.ingestor(), rt.bus.topology.partition_of, agent_names(settings, rt.file), bus=rt.bus, store=rt.store
            )
            try:
                yield client
            finally:
                if client._hub is not None:
                    await client._hub.close()

    async def dispatch(
        self,
        text: str,
        *,
        to: ReplyAddress,
        agent: str | None = None,
        sender: Sender | None = None,
        idempotency_key: str | None = None,
        kind: EventKind = EventKind.MESSAGE,
        raw: dict[str, Any] | None = None,
        session: str | None = None,
    ) -> Receipt:
        """Publish one event durably; returns once RabbitMQ confirmed (raises PublishError otherwise).

        An ``agent`` no consumer with these settings serves raises :class:`ConfigError` before anything is
        published (it would only reach the dead letters). A repeated ``idempotency_key`` publishes nothing and
        returns the first event's id with ``duplicate=True``. ``session`` runs the turn in that named session of
        the conversation (its own history, memory and state; a route's ``session`` takes precedence).
        """
        if agent is not None and self._agents is not None and agent not in self._agents:
            known = ", ".join(sorted(self._agents))
            raise ConfigError(f"unknown agent {agent!r}: this gateway serves {known} (agents are set in gateway.toml)")
        event_id = new_id()
        event = Event(
            id=event_id,
            platform=to.platform,
            delivery_id=f"api:{idempotency_key or event_id}",
            kind=kind,
            conversation_key=conversation_key(to),
            agent=agent,
            sender=sender or Sender(id="api", name="application"),
            text=text,
            reply_to=to,
            message_ref=f"api:{idempotency_key or event_id}",
            raw=raw or {},
            session=None if session is None else check_name(session),
        )
        admitted = await self._ingestor.admit(event, agent=agent)
        return Receipt(
            event_id=admitted.event_id,
            conversation_key=event.conversation_key,
            partition=self._partition_of(event.conversation_key),
            duplicate=admitted.outcome is not Outcome.PUBLISHED,
        )

    async def stream(
        self, conversation_key: str, *, after: str | None = None, heartbeat: float = 15.0
    ) -> AsyncIterator[dict[str, Any]]:
        """A web conversation's transcript entries after ``after``, then each new one as it is written.

        Never ends by itself (break out, or cancel). Entries carry stable ids: keep the last one to resume.
        The transcript is re-read at least every ``heartbeat`` seconds, so a hint lost while the broker was
        away delays an entry, never loses it.
        """
        if self._bus is None or self._store is None:
            raise ConfigError("stream() needs a client made by GatewayClient.connect()")
        if not conversation_key.startswith("web:"):
            raise ConfigError(f"stream() reads web conversations (web:APP:ID); {conversation_key!r} is not one")
        if self._hub is None:
            self._hub = WebHub(self._bus)
        await self._hub.ensure_started()
        last = after
        with self._hub.listen(conversation_key) as hints:  # listening before the first read: nothing slips by
            while True:
                for item in await transcript.read_after(self._store, conversation_key, last):
                    last = str(item.get("id"))
                    yield item
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hints.get(), heartbeat)
