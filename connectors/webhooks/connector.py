"""Generic signed webhooks: ``POST /webhooks/{source}`` (Standard Webhooks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.base import ConnectorResult, InboundRequest, parse_json_object
from connectors.webhooks import jsonpointer, signing
from gateway.core.errors import MalformedPayload, NotFound
from gateway.core.events import Event, EventKind, ReplyAddress
from gateway.core.routing import conversation_key


@dataclass(frozen=True, slots=True)
class WebhookSource:
    name: str
    keys: tuple[bytes, ...]
    customer_pointer: str
    text_pointer: str
    type_pointer: str | None = None
    reply_url: str | None = None


class WebhookConnector:
    platform = "webhook"

    def __init__(self, sources: Mapping[str, WebhookSource], replay_window: int = 300) -> None:
        self._sources = dict(sources)
        self._window = replay_window

    def handles(self, target: str) -> bool:
        return target in self._sources

    def handle(self, request: InboundRequest) -> ConnectorResult:
        source = self._sources.get(request.target)
        if source is None:
            raise NotFound(f"no webhook source named {request.target!r}", platform="webhook")
        msg_id = signing.verify(source.keys, request.headers, request.body, request.now, self._window)
        payload = parse_json_object(request.body, platform="webhook")
        customer = jsonpointer.resolve(payload, source.customer_pointer)
        if customer is None or isinstance(customer, dict | list) or customer == "":
            raise MalformedPayload(f"no customer id at {source.customer_pointer}", platform="webhook")
        text = jsonpointer.resolve(payload, source.text_pointer)
        address = ReplyAddress(
            platform="webhook",
            bot=source.name,
            channel=str(customer),
            user=str(customer),
            reply_url=source.reply_url,
        )
        event = Event(
            platform="webhook",
            delivery_id=msg_id,
            kind=EventKind.MESSAGE,
            conversation_key=conversation_key(address),
            text=text if isinstance(text, str) else "",
            reply_to=address,
            message_ref=f"webhook:{source.name}:{msg_id}",
            raw=payload,
        )
        return ConnectorResult(events=[event])
