"""``gateway serve`` (ingress only) and ``gateway dev`` (everything in one process)."""

from __future__ import annotations

import argparse
from typing import Any

import structlog

from connectors import secret_policy
from gateway.core.errors import ConfigError
from gateway.core.presence import announced, ingress_member
from gateway.core.settings import Settings
from gateway.http import HttpState, build_app
from gateway.runtime import Runtime, open_runtime, require_services, settle_heap
from gateway.server import ensure_port_free, serve_http, stop_event
from gateway.supervisor import Supervisor, cores, die_with_parent

log = structlog.get_logger(__name__)


def ingress_state(rt: Runtime, *, dev: bool = False) -> HttpState:
    ingestor = rt.ingestor()
    parts = rt.parts(ingestor=ingestor, dev=dev)
    registry = rt.registry(parts)
    for note in registry.notes:
        log.info("connector", note=note)
    mounts = [m for m in (p.http(parts) for p in registry.platforms.values() if p.http is not None) if m is not None]
    return HttpState(
        mounts=mounts,
        bus=rt.bus,
        store=rt.store,
        metrics=rt.metrics,
        registry=registry,
        ingestor=ingestor,
        max_body=rt.settings.max_body_bytes,
        body_timeout=rt.settings.body_timeout,
    )


def worker_count(settings: Settings, args: argparse.Namespace) -> int:
    asked = args.workers if getattr(args, "workers", None) is not None else settings.serve_workers
    return asked if asked > 0 else cores()


async def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    require_services(settings, "serve")
    secret_policy.enforce(settings, settings.load_file(), command="serve")
    worker = bool(getattr(args, "worker", False))
    if worker:
        die_with_parent()  # the supervisor checked the port; this worker shares it (SO_REUSEPORT)
    else:
        ensure_port_free(settings.host, settings.port, "GATEWAY_PORT")
        workers = worker_count(settings, args)
        if workers > 1:
            if settings.port == 0:
                raise ConfigError("--workers > 1 needs a fixed GATEWAY_PORT: the workers share it")
            return await Supervisor(workers, grace=settings.shutdown_grace).run(stop_event())
    stop = stop_event()
    async with open_runtime(settings, block_until_connected=False, stop=stop) as rt:
        state = ingress_state(rt)  # bad configuration fails here, before listening
        app = build_app(state)
        settle_heap()
        async with announced(rt.store, ingress_member(settings.host, settings.port), settings.lease_ttl):
            await serve_http(
                app,
                settings.host,
                settings.port,
                stop,
                grace=settings.shutdown_grace,
                header_timeout=settings.header_timeout,
                drain_delay=settings.drain_delay,
                reuse_port=worker,
            )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP ingress only (needs AMQP_URL and REDIS_URL)",
        description="HTTP ingress: verify each webhook (Slack, Telegram, Standard Webhooks), normalize and "
        "deduplicate it, publish it to RabbitMQ and answer 200 only once the broker confirmed (503 otherwise, so "
        "the platform retries). Listens on GATEWAY_HOST:GATEWAY_PORT (127.0.0.1:8080); run as many as you like. "
        "Needs AMQP_URL and REDIS_URL, and refuses placeholder or weak connector secrets (`gateway check` lists "
        "them). With --workers N (GATEWAY_SERVE_WORKERS; default: one per core) N such processes share the port "
        "(SO_REUSEPORT) under one supervisor that restarts a worker that dies and stops them all on SIGTERM.",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="ingress processes on the port (default GATEWAY_SERVE_WORKERS, 0 = one per core)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by the supervisor
    p.set_defaults(run=run_serve)
