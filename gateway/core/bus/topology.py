"""Names and routing of every exchange and queue, under one namespace.

    {ns}.events   direct ─ key "{p}" ─▶ {ns}.dispatch.{p}   quorum, single-active-consumer
    {ns}.outbound direct ─ key "{p}" ─▶ {ns}.outbound.{p}   quorum, single-active-consumer
    {ns}.dead     fanout ────────────▶ {ns}.dead            quorum
    {ns}.web      fanout ─▶ every serve process's own exclusive queue (web chat: "a reply is ready")
    tails bind their own exclusive, auto-deleted, length-capped queues to all three.

An outbound message uses its conversation's partition, so the process that owns
the conversation also sends its replies: per-chat order and per-chat rate limits
are kept locally; only global limits need Redis.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

ExchangeType = Literal["direct", "fanout", "topic"]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    single_active: bool = True


@dataclass(frozen=True, slots=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = "gw"
    partitions: int = 16

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def outbound_exchange(self) -> str:
        return f"{self.namespace}.outbound"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def web_exchange(self) -> str:
        return f"{self.namespace}.web"

    @property
    def dead_queue(self) -> str:
        return f"{self.namespace}.dead"

    def dispatch_queue(self, partition: int) -> str:
        return f"{self.namespace}.dispatch.{partition}"

    def outbound_queue(self, partition: int) -> str:
        return f"{self.namespace}.outbound.{partition}"

    def partition_of(self, conversation_key: str) -> int:
        """Stable across processes and restarts (unlike ``hash()``)."""
        return zlib.crc32(conversation_key.encode()) % self.partitions

    def exchanges(self) -> list[tuple[str, ExchangeType]]:
        return [
            (self.events_exchange, "direct"),
            (self.outbound_exchange, "direct"),
            (self.dead_exchange, "fanout"),
            (self.web_exchange, "fanout"),
        ]

    def queues(self) -> list[QueueSpec]:
        specs = [QueueSpec(self.dispatch_queue(p)) for p in range(self.partitions)]
        specs += [QueueSpec(self.outbound_queue(p)) for p in range(self.partitions)]
        specs.append(QueueSpec(self.dead_queue, single_active=False))
        return specs

    def bindings(self) -> list[Binding]:
        out = [Binding(self.events_exchange, self.dispatch_queue(p), str(p)) for p in range(self.partitions)]
        out += [Binding(self.outbound_exchange, self.outbound_queue(p), str(p)) for p in range(self.partitions)]
        out.append(Binding(self.dead_exchange, self.dead_queue, ""))
        return out

    def tap_bindings(self) -> list[tuple[str, str]]:
        """What a tail binds to see everything: every partition key of both direct exchanges, and the dead one."""
        keys = [str(p) for p in range(self.partitions)]
        return (
            [(self.events_exchange, k) for k in keys]
            + [(self.outbound_exchange, k) for k in keys]
            + [(self.dead_exchange, "")]
        )
