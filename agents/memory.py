"""Agent memory: documents namespaced per agent and conversation.

One conversation can never read another's: the namespace is fixed by the
runtime from the turn's agent, conversation key and session (gateway/core/sessions.py), not chosen by the
agent.
With a ``ttl`` (``GATEWAY_MEMORY_TTL``) the whole memory of a conversation
expires that long after its last write.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.core.sessions import DEFAULT, scoped
from gateway.core.store.base import Store


def memory_key(agent: str, conversation_key: str, session: str = DEFAULT) -> str:
    return f"mem:{agent}:{scoped(conversation_key, session)}"


class Memory:
    def __init__(
        self, store: Store, agent: str, conversation_key: str, *, ttl: float | None = None, session: str = DEFAULT
    ) -> None:
        self._store = store
        self._key = memory_key(agent, conversation_key, session)
        self._ttl = ttl

    async def store(self, doc_id: str, content: str, **metadata: Any) -> None:
        doc = {"id": doc_id, "content": content, "metadata": metadata, "at": time.time()}
        await self._store.hput(self._key, doc_id, json.dumps(doc), ttl=self._ttl)

    async def retrieve(self, doc_id: str) -> dict[str, Any] | None:
        raw = await self._store.hget(self._key, doc_id)
        return None if raw is None else dict(json.loads(raw))

    async def delete(self, doc_id: str) -> bool:
        return await self._store.hdel(self._key, doc_id)

    async def all(self) -> list[dict[str, Any]]:
        docs = [json.loads(v) for v in (await self._store.hall(self._key)).values()]
        return sorted(docs, key=lambda d: d["at"])

    async def query(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        """Documents ranked by how many words of ``text`` they contain (no embeddings needed)."""
        words = {w for w in text.lower().split() if len(w) > 2}
        scored = []
        for doc in await self.all():
            content = str(doc["content"]).lower()
            score = sum(1 for w in words if w in content)
            if score:
                scored.append((score, doc["at"], doc))
        scored.sort(key=lambda t: (-t[0], -t[1]))
        return [doc for _, _, doc in scored[:limit]]
