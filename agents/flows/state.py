"""A conversation's place in a flow, kept in the store (Redis) so it outlives the process.

``flow:{agent}:{conversation key}`` holds one JSON document::

    {"v": 7, "step": "contact", "asked": true, "data": {"order_number": "A-1042"}, "attempts": 1,
     "done": false, "events": ["<event ids of the turn that wrote v7>"], "replies": ["..."], "streamed": [0]}

Why each part:

- ``events`` / ``replies`` make a turn idempotent per event: a redelivered turn (the consumer died after
  saving, before the turn was marked done, and another took over) finds its own event ids and sends the
  same replies again without advancing (the sender drops the ones already posted: same ids). A turn
  regrouped with newer events (the ``collect`` busy policy) sends those replies again and applies only the
  newer events.
- ``v`` is the version. A save claims ``flow:{agent}:{key}:v{n}`` for its events first (``SET NX``): two
  consumers that both ran a turn on version ``n-1`` (a zombie during a failover) cannot both write ``n``;
  the loser's turn fails and the dispatcher runs it again on the state now there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gateway.core.store.base import Store

#: How long a version claim lives: longer than any turn (GATEWAY_TURN_TIMEOUT, 300 s); it only stops a concurrent one.
CLAIM_TTL = 3600.0


class FlowConflict(Exception):
    """Another turn saved this version of the flow state first; the dispatcher retries this one."""


def state_key(agent: str, conversation_key: str) -> str:
    return f"flow:{agent}:{conversation_key}"


@dataclass
class FlowState:
    v: int = 0
    step: str | None = None
    #: The current step's question was sent (the next message answers it).
    asked: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    #: Refused answers in a row at the current step.
    attempts: int = 0
    done: bool = False
    events: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    #: Positions in ``replies`` that were streamed (sent again as a stream, so a retry continues the same
    #: platform message rather than posting a second one). Missing in states written before: none.
    streamed: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowState:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @classmethod
    def from_json(cls, raw: str | None) -> FlowState:
        return cls() if raw is None else cls.from_dict(json.loads(raw))

    def pending(self, events: Sequence[str]) -> tuple[list[str], list[str]]:
        """Of a turn's events, the ones this state has not applied yet, and the replies to send again
        first (the ones of this state's own turn when the new turn repeats some of its events)."""
        fresh = [e for e in events if e not in self.events]
        return fresh, (list(self.replies) if len(fresh) < len(events) else [])

    def after(self, events: Sequence[str], replies: Sequence[str], streamed: Sequence[int] = ()) -> FlowState:
        """This state as a turn's result: the next version, with the turn's events and what it sent."""
        return replace(self, v=self.v + 1, events=list(events), replies=list(replies), streamed=list(streamed))


async def load(store: Store, agent: str, conversation_key: str) -> FlowState:
    return FlowState.from_json(await store.get(state_key(agent, conversation_key)))


async def save(store: Store, agent: str, conversation_key: str, state: FlowState, *, ttl: float | None) -> None:
    """Write ``state`` (version ``state.v``) unless another turn wrote that version first."""
    key = state_key(agent, conversation_key)
    owner = ",".join(state.events)
    held = await store.claim(f"{key}:v{state.v}", owner, CLAIM_TTL)
    if held is not None and held != owner:
        raise FlowConflict(f"flow state {key} v{state.v} was saved by another turn ({held})")
    await store.put(key, state.to_json(), ttl=ttl)
