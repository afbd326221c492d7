"""Building the web surface from settings: enabled by ``GATEWAY_WEB_SECRET`` (``dev`` makes a throwaway one)."""

from __future__ import annotations

import structlog

from connectors.web.auth import Site, WebAuth
from connectors.web.hub import WebHub
from connectors.web.routes import WebState, throwaway_secret
from gateway.core.bus.base import Bus
from gateway.core.config import GatewayFile
from gateway.core.ingest import Ingestor
from gateway.core.metrics import Metrics
from gateway.core.settings import Settings
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)


def build_web(
    settings: Settings, file: GatewayFile, *, bus: Bus, store: Store, ingestor: Ingestor, metrics: Metrics, dev: bool
) -> WebState | None:
    if settings.web_secret is not None:
        default_secret = settings.web_secret.get_secret_value()
    elif dev:
        default_secret = throwaway_secret()
        log.warning(
            "web_throwaway_secret",
            note="GATEWAY_WEB_SECRET is not set: visitor tokens are signed with a throwaway secret and stop "
            "working when this process exits. Set it to keep visitors across restarts.",
        )
    else:
        log.info("connector", note="GATEWAY_WEB_SECRET is not set: the web chat and the /v1 API are disabled (404)")
        return None
    section = file.web
    sites = {"default": Site("default", default_secret.encode())}
    for name, cfg in section.sites.items():
        own = cfg.secret(name)
        secret = own.get_secret_value() if own is not None else default_secret
        sites[name] = Site(name, secret.encode(), frozenset(cfg.allowed_origins))
    apps = {cfg.key(name).get_secret_value().encode(): name for name, cfg in section.apps.items()}
    log.info(
        "connector",
        note=f"Web chat enabled: GET /chat, /chat/widget.js, /v1 API (sites: {', '.join(sorted(sites))}; "
        f"apps: {', '.join(sorted(section.apps)) or 'none'})",
    )
    return WebState(
        auth=WebAuth(sites, apps),
        section=section,
        hub=WebHub(bus),
        store=store,
        bus=bus,
        ingestor=ingestor,
        metrics=metrics,
        ttl=settings.history_ttl or None,
    )
