"""Ingress instances say they are alive, so ``gateway status`` can list them.

Each ``gateway serve`` heartbeats into the Redis group ``ingress`` (member ``host-pid@host:port``) every
few seconds with a TTL; a stopped one leaves the group, a killed one drops out when its TTL runs out.
Presence is best effort: Redis trouble is logged once per outage and never stops ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import structlog

from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
INGRESS = "ingress"


def ingress_member(host: str, port: int) -> str:
    return f"{socket.gethostname()}-{os.getpid()}@{host}:{port}"


async def _beat(store: Store, member: str, ttl: float) -> None:
    failing = False
    while True:
        try:
            await store.heartbeat(INGRESS, member, ttl)
            if failing:
                log.info("presence_restored", member=member)
            failing = False
        except Exception as exc:
            if not failing:
                log.warning("presence_failed", member=member, error=str(exc))
            failing = True
        await asyncio.sleep(ttl / 3)


@contextlib.asynccontextmanager
async def announced(store: Store, member: str, ttl: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_beat(store, member, ttl))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await store.leave(INGRESS, member)
