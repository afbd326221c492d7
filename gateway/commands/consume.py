"""``gateway consume`` (dispatch and outbound workers) and ``gateway dev`` (everything in one process)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import structlog

from connectors import secret_policy
from connectors.registry import platforms
from gateway.commands.serve import ingress_state
from gateway.core.settings import Settings
from gateway.http import HttpState, build_app
from gateway.runtime import Runtime, open_runtime, require_services, settle_heap
from gateway.server import ensure_port_free, serve_http, stop_event

if TYPE_CHECKING:
    from consumers.worker import ConsumerWorker

log = structlog.get_logger(__name__)


def make_worker(rt: Runtime, *, console_fallback: bool = False) -> ConsumerWorker:
    # Imported here, not at the top: `gateway serve` and the operator commands never load agents or consumers.
    from agents.registry import load_agents
    from consumers.senders import build_senders
    from consumers.worker import ConsumerWorker

    agents = load_agents(rt.settings, rt.file)
    known = platforms(rt.settings)
    senders = build_senders(rt.parts(), known, console_fallback=console_fallback)
    return ConsumerWorker(
        rt.settings,
        bus=rt.bus,
        store=rt.store,
        publisher=rt.publisher,
        metrics=rt.metrics,
        agents=agents,
        senders=senders,
        rate_policies={name: p.rate_policy(rt.settings) for name, p in known.items()},
        file=rt.file,
        signals=rt.signals,
    )


async def run_consume(settings: Settings, args: argparse.Namespace) -> int:
    require_services(settings, "consume")
    secret_policy.enforce(settings, settings.load_file(), command="consume")
    ensure_port_free(settings.host, settings.consume_port, "GATEWAY_CONSUME_PORT")
    stop = stop_event()
    async with open_runtime(settings, stop=stop) as rt:
        worker = make_worker(rt)
        settle_heap()
        state = HttpState(bus=rt.bus, store=rt.store, metrics=rt.metrics, checks={"consumer": worker.ready})
        async with worker:
            await serve_http(
                build_app(state, webhooks=False),
                settings.host,
                settings.consume_port,
                stop,
                port_variable="GATEWAY_CONSUME_PORT",
                on_drain=worker.shutdown,
                grace=settings.shutdown_grace + 5,
                header_timeout=settings.header_timeout,
            )
    return 0


async def run_dev(settings: Settings, args: argparse.Namespace) -> int:
    for warning in secret_policy.enforce(settings, settings.load_file(), command="dev"):
        log.warning("weak_secret", note=warning)
    ensure_port_free(settings.host, settings.port, "GATEWAY_PORT")
    stop = stop_event()
    if settings.amqp_url is None or settings.redis_url is None:
        log.warning(
            "embedded_mode",
            note="AMQP_URL/REDIS_URL unset: using the in-process bus and store. Accepted work is LOST on exit. "
            "Set both to run on RabbitMQ and Redis.",
        )
    async with open_runtime(settings, stop=stop) as rt:
        state = ingress_state(rt, dev=True)
        worker = make_worker(rt, console_fallback=True)
        state.checks["consumer"] = worker.ready
        settle_heap()
        async with worker:
            await serve_http(
                build_app(state),
                settings.host,
                settings.port,
                stop,
                on_drain=worker.shutdown,
                grace=settings.shutdown_grace + 5,
                header_timeout=settings.header_timeout,
                drain_delay=settings.drain_delay,
            )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "consume",
        help="dispatch and outbound workers (needs AMQP_URL and REDIS_URL)",
        description="Dispatch and outbound workers: take a fair share of the partitions (leases in Redis), run each "
        "conversation's turns in order through its agent, and send the replies rate-limited and never twice. "
        "Serves /healthz, /readyz and /metrics on GATEWAY_HOST:GATEWAY_CONSUME_PORT (127.0.0.1:8081), so it runs "
        "beside `gateway serve` as is. Run up to GATEWAY_PARTITIONS of them. Needs AMQP_URL and REDIS_URL.",
    )
    p.set_defaults(run=run_consume)
    d = sub.add_parser(
        "dev",
        help="ingress + consumers + sender in one process (in-process bus/store by default)",
        description="Ingress, consumers and senders in one process, on GATEWAY_HOST:GATEWAY_PORT (127.0.0.1:8080). "
        "Without AMQP_URL and REDIS_URL it uses in-process twins of the bus and store (accepted work is lost on "
        "exit); replies of platforms without credentials are printed. Short secrets are only warned about: "
        "SLACK_SIGNING_SECRET=dev-secret gateway dev, then `gateway send slack hello` from another terminal.",
    )
    d.set_defaults(run=run_dev)
