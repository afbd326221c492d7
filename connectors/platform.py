"""What a platform is, in one object: the shape every connector package fills in.

A :class:`Platform` carries everything the rest of the gateway needs to know about a platform: its name
(``Event.platform``), the routes ingress serves for it, how to build its inbound side (verify + parse) and its
outbound side (the sender), its outbound rate policy, the conversation keys it produces, and how
``gateway send`` builds a sample request. The HTTP app, the consumer and the operator commands only ever go
through these objects (``connectors/registry.py`` lists them), so a new platform is one folder under
``connectors/`` plus one line in that list (docs/platforms.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.core.config import GatewayFile
from gateway.core.events import ReplyAddress
from gateway.core.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from connectors.base import Connector
    from connectors.outbound import PlatformSender
    from gateway.core.bus.base import Bus
    from gateway.core.ingest import Ingestor
    from gateway.core.metrics import Metrics
    from gateway.core.store.base import Store


@dataclass(frozen=True)
class Endpoint:
    """A webhook route served by the generic handler: ``path`` has one ``{param}``, the connector's target.

    A fixed path is a parameter with a pattern: ``Endpoint("/{target:whatsapp}")`` serves ``/whatsapp`` only."""

    path: str
    method: str = "POST"

    @property
    def param(self) -> str:
        return self.path[self.path.index("{") + 1 : self.path.index("}")].split(":", 1)[0]


@dataclass(frozen=True)
class Bucket:
    """One token bucket a message must pass: ``rate`` tokens per second, at most ``burst`` saved up."""

    key: str
    rate: float
    burst: float


class RatePolicy(Protocol):
    """A platform's outbound limits for one destination.

    ``local`` buckets are kept in the consumer process (per chat: a chat's conversations live on partitions
    this process owns); ``shared`` ones in the store, across every consumer (per bot, per workspace).
    """

    def local(self, to: ReplyAddress) -> Sequence[Bucket]: ...

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]: ...


@dataclass(frozen=True)
class ChatRates:
    """The usual shape of a platform's limits: one bucket per chat (channel, conversation, user), kept in the
    consumer that owns the chat, and one per bot (workspace, tenant, phone number) shared across consumers."""

    platform: str
    chat_rate: float
    chat_burst: float
    bot_rate: float

    def local(self, to: ReplyAddress) -> Sequence[Bucket]:
        return (Bucket(f"{self.platform}:{to.bot}:{to.channel}", self.chat_rate, self.chat_burst),)

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]:
        return (Bucket(f"{self.platform}:{to.bot}", self.bot_rate, self.bot_rate),)


@dataclass(frozen=True)
class Unlimited:
    """The explicit policy of a platform whose destination sets no limit (the gateway's own web chat).

    ``why`` is required: a platform never gets no limit by omission."""

    why: str

    def local(self, to: ReplyAddress) -> Sequence[Bucket]:
        return ()

    def shared(self, to: ReplyAddress) -> Sequence[Bucket]:
        return ()


@dataclass(frozen=True)
class Parts:
    """What a platform's builders may use besides settings and ``gateway.toml``."""

    settings: Settings
    file: GatewayFile
    store: Store | None = None
    bus: Bus | None = None
    ingestor: Ingestor | None = None
    metrics: Metrics | None = None
    #: ``gateway dev``: throwaway secrets and console stand-ins are allowed.
    dev: bool = False


@dataclass(frozen=True)
class SampleRequest:
    """What ``gateway send PLATFORM ...`` posts."""

    path: str
    body: bytes
    headers: dict[str, str]


def _no_inbound(parts: Parts, notes: list[str]) -> Connector | None:
    return None


def _no_outbound(parts: Parts) -> PlatformSender | None:
    return None


@dataclass(frozen=True)
class Platform:
    name: str
    #: Built from settings; the policy is required (``Unlimited(why=...)`` says so explicitly).
    rate_policy: Callable[[Settings], RatePolicy]
    #: One line for docs and ``gateway check``: the conversation keys events of this platform carry.
    conversation_key: str
    #: Webhook routes served by the generic handler (verify + parse + publish before 200).
    endpoints: tuple[Endpoint, ...] = ()
    #: The connector that verifies and parses those routes' requests; ``None`` when disabled (404). Appends one
    #: human-readable line per decision to ``notes`` (start-up log, ``gateway check``).
    inbound: Callable[[Parts, list[str]], Connector | None] = _no_inbound
    #: The sender of this platform's replies; ``None`` without credentials.
    outbound: Callable[[Parts], PlatformSender | None] = _no_outbound
    #: Routes of their own (pages, streams, sockets), mounted by ingress; returns ``None`` when disabled.
    http: Callable[[Parts], Callable[[web.Application], None] | None] | None = None
    #: ``gateway send NAME``: its arguments, and the signed request it posts.
    send_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    sample: Callable[[Settings, argparse.Namespace], SampleRequest] | None = None
    send_help: str = ""
    #: Replies without credentials are printed by ``gateway dev`` (a console stand-in) rather than dead-lettered.
    console_fallback: bool = True
