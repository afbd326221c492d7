"""A receiver for outbound webhooks: records every POST to any path.

::

    async with WebhookReceiver() as hook:
        ...  # make the gateway POST to f"{hook.base_url}/hooks/agent"
        [req] = await hook.wait_for_requests(1, path="/hooks/agent")
        assert req.json()["text"] == "hi"; req.body  # raw bytes, for signature checks

Each POST is also recorded as a :class:`~tests.fakes.base.Call` whose ``method`` is the path and
whose ``args`` are ``{"path", "query", "body" (utf-8 text), "json" (parsed, or None)}`` so that
``wait_for_calls(n, method="/hooks/agent")`` and ``GET /_calls`` work as for the other fakes.
Answers 200 ``{"ok": true}`` unless :meth:`WebhookReceiver.respond_with` or an injection says
otherwise.

Run standalone: ``python -m tests.fakes.webhook_receiver --port 0`` prints
``READY http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.base import Call, FakeServer, run_cli

__all__ = ["ReceivedWebhook", "WebhookReceiver"]


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: dict[str, str]
    status: int

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8")


class WebhookReceiver(FakeServer):
    name = "WebhookReceiver"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.requests: list[ReceivedWebhook] = []
        self._status = 200
        self._body: bytes = b'{"ok": true}'
        self._content_type = "application/json"
        self._headers: dict[str, str] = {}

    def respond_with(
        self,
        status: int = 200,
        body: bytes | str | dict[str, Any] = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Change the default answer for every following POST."""
        if isinstance(body, dict):
            self._body, self._content_type = json.dumps(body).encode(), "application/json"
        else:
            self._body = body.encode() if isinstance(body, str) else body
            self._content_type = "text/plain"
        if content_type is not None:
            self._content_type = content_type
        self._status = status
        self._headers = dict(headers or {})

    def requests_for(self, path: str | None = None) -> list[ReceivedWebhook]:
        return [r for r in self.requests if path is None or r.path == path]

    async def wait_for_requests(self, n: int, path: str | None = None, timeout: float = 10.0) -> list[ReceivedWebhook]:
        what = f"{n} POST(s)" + (f" to {path!r}" if path else "")
        await self.wait_until(lambda: len(self.requests_for(path)) >= n, timeout, what)
        return self.requests_for(path)

    def reset(self) -> None:
        super().reset()
        self.requests.clear()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        args: dict[str, Any] = {
            "path": path,
            "query": dict(request.query),
            "body": body.decode("utf-8", errors="replace"),
            "json": parsed,
        }

        def respond() -> web.StreamResponse:
            return web.Response(
                body=self._body,
                status=self._status,
                headers=self._headers,
                content_type=self._content_type,
            )

        def on_record(call: Call) -> None:
            self.requests.append(
                ReceivedWebhook(
                    path=path,
                    headers=call.headers,
                    body=body,
                    at=call.at,
                    query=dict(request.query),
                    status=call.status,
                )
            )

        response = await self.handle(request, path, args, respond, on_record=on_record)
        return response


def main(argv: list[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        pass

    return run_cli(lambda ns: WebhookReceiver(host=ns.host, port=ns.port), configure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
