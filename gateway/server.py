"""Running the web app until SIGTERM/SIGINT, then draining."""

from __future__ import annotations

import asyncio
import errno
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.errors import ConfigError
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
    port_setting: str = "GATEWAY_PORT",
) -> None:
    """Serve until ``stop``; then report not-ready, run ``on_drain`` and close within ``grace``.

    For ``drain_delay`` seconds after the signal ``/readyz`` answers 503 while webhooks are still
    accepted, so a load balancer stops routing here before the listener closes.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=min(grace, 10.0))
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use: set {port_setting} to a free port") from None
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}): check GATEWAY_HOST and {port_setting}"
        ) from None
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
