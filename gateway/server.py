"""Running the web app until SIGTERM/SIGINT, then draining."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.http import STATE

log = structlog.get_logger(__name__)


def stop_event() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_http(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    on_drain: Callable[[], Awaitable[None]] | None = None,
    grace: float = 20.0,
    drain_delay: float = 0.0,
) -> None:
    """Serve until ``stop``; then report not-ready, run ``on_drain`` and close within ``grace``.

    For ``drain_delay`` seconds after the signal ``/readyz`` answers 503 while webhooks are still
    accepted, so a load balancer stops routing here before the listener closes.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=min(grace, 10.0))
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    log.info("listening", url=f"http://{host}:{port}")
    await stop.wait()
    app[STATE].draining = True
    log.info("draining", grace_seconds=grace, drain_delay=drain_delay)
    if drain_delay > 0:
        await asyncio.sleep(drain_delay)
    try:
        if on_drain is not None:
            await asyncio.wait_for(on_drain(), grace)
    except TimeoutError:
        log.warning("drain_timeout", grace_seconds=grace)
    finally:
        await runner.cleanup()
        log.info("stopped")
