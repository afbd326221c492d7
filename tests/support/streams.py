"""A platform stream's saved state for the senders' unit tests, kept as consumers/streams.py keeps it."""

from __future__ import annotations

from connectors.streaming import StreamState


class Saved:
    """The store's copy of a stream's state: ``load`` reads it back, ``save`` writes it, ``pace`` counts the
    rate-limit waits the sender asked for."""

    def __init__(self) -> None:
        self.raw: str | None = None
        self.state = StreamState()
        self.paced = 0

    def load(self) -> StreamState:
        self.state = StreamState.from_json(self.raw)
        return self.state

    async def pace(self) -> None:
        self.paced += 1

    async def save(self) -> None:
        self.raw = self.state.to_json()
