"""The toy platform's API, as a local server: ``POST /send`` with the bearer token, else 401."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer


class FakeToy(FakeServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/send", self._send)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid token"}, status=401)
        body = await request.json()
        async with self._changed:
            self.sent.append(body)
            self._changed.notify_all()
        return web.json_response({"ok": True, "message_id": next(self._ids)})

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= n)
        return list(self.sent)
