"""The baseline: a bare aiohttp WebSocket server that echoes each text frame at once (no auth, no queue,
no store). ``python bench/web/bare_echo.py PORT``."""

from __future__ import annotations

import sys

from aiohttp import WSMsgType, web


async def ws(request: web.Request) -> web.WebSocketResponse:
    sock = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024)
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(msg.data)
    return sock


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/readyz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
