"""Dispatch from code: hand an event to an agent without an HTTP webhook.

    from gateway.client import GatewayClient, slack_thread

    async with GatewayClient.connect() as gw:            # AMQP_URL and REDIS_URL from the environment
        receipt = await gw.dispatch("Daily report is ready", to=slack_thread("C0123"), agent="reporter",
                                    idempotency_key="report-2026-11-21")

The event takes the durable path a webhook takes: routed, deduplicated on the
idempotency key (24 h), published persistently and confirmed before
``dispatch`` returns. The agent answers wherever ``to`` points.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agents.registry import agent_names
from gateway.core.errors import ConfigError
from gateway.core.events import Event, EventKind, ReplyAddress, Sender, new_id
from gateway.core.ingest import Ingestor, Outcome
from gateway.core.routing import conversation_key
from gateway.core.settings import Settings
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


class GatewayClient:
    def __init__(self, ingestor: Ingestor, partition_of: Any, agents: set[str] | None = None) -> None:
        self._ingestor = ingestor
        self._partition_of = partition_of
        #: The agents a consumer with the same settings serves; ``None`` accepts any name.
        self._agents = agents

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings | None = None) -> AsyncIterator[GatewayClient]:
        settings = settings or Settings()
        require_services(settings, "client")
        async with open_runtime(settings) as rt:
            yield cls(rt.ingestor(), rt.bus.topology.partition_of, agent_names(settings, rt.file))

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
    ) -> Receipt:
        """Publish one event durably; returns once RabbitMQ confirmed (raises PublishError otherwise).

        An ``agent`` no consumer with these settings serves raises :class:`ConfigError` before anything is
        published (it would only reach the dead letters). A repeated ``idempotency_key`` publishes nothing and
        returns the first event's id with ``duplicate=True``.
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
        )
        admitted = await self._ingestor.admit(event, agent=agent)
        return Receipt(
            event_id=admitted.event_id,
            conversation_key=event.conversation_key,
            partition=self._partition_of(event.conversation_key),
            duplicate=admitted.outcome is not Outcome.PUBLISHED,
        )
