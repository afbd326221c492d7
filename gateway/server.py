"""Running the web app until SIGTERM/SIGINT, then draining."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.core.errors import ConfigError
from gateway.http import STATE

log = structlog.get_logger(__name__)


def stop_event() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def listen_error(exc: OSError, host: str, port: int, variable: str) -> ConfigError:
    """One line that says why ``host:port`` cannot be listened on and which variable to change."""
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"{where}: the port is in use (another gateway?); set {variable} to a free port")
    if exc.errno == errno.EACCES:
        return ConfigError(f"{where}: permission denied (ports below 1024 need privileges); set {variable}")
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(f"{where}: not an address of this machine; set GATEWAY_HOST (e.g. 0.0.0.0 or 127.0.0.1)")
    return ConfigError(f"{where}: {exc.strerror or exc}; check GATEWAY_HOST and {variable}")


def ensure_port_free(host: str, port: int, variable: str) -> None:
    """Fail at start-up, before connecting anything, when the listen address is taken or invalid.

    Binds and closes a socket the way asyncio's server will (``SO_REUSEADDR``), so a port in
    TIME_WAIT passes and one another process listens on does not. Port 0 (any free port) always passes.
    """
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise listen_error(exc, host, port, variable) from exc


async def serve_http(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    port_variable: str = "GATEWAY_PORT",
    on_drain: Callable[[], Awaitable[None]] | None = None,
    grace: float = 20.0,
    drain_delay: float = 0.0,
    header_timeout: float = 15.0,
    reuse_port: bool = False,
) -> None:
    """Serve until ``stop``; then report not-ready, run ``on_drain`` and close within ``grace``.

    For ``drain_delay`` seconds after the signal ``/readyz`` answers 503 while webhooks are still
    accepted, so a load balancer stops routing here before the listener closes.
    """
    # keepalive_timeout also closes a connection that has not completed its first request by then
    # (aiohttp arms it at connection start): a slow or partial request (slowloris) is cut off.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=min(grace, 10.0),
        keepalive_timeout=header_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError as exc:  # taken since ensure_port_free
        await runner.cleanup()
        raise listen_error(exc, host, port, port_variable) from exc
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
