"""The connectors of the enabled platforms, built from the platform list (``connectors/registry.py``).

A connector whose secret is not configured is not registered at all: its
routes answer 404, never accept unsigned traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import Connector, ConnectorResult, InboundRequest
from connectors.platform import Parts, Platform
from connectors.registry import platforms
from gateway.core.config import GatewayFile
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings

__all__ = ["Connector", "ConnectorResult", "InboundRequest", "Registry", "build_registry"]


@dataclass
class Registry:
    connectors: dict[str, Connector] = field(default_factory=dict)
    #: Every known platform (enabled or not), by name: what ingress mounts, what events may name.
    platforms: dict[str, Platform] = field(default_factory=dict)
    #: Human-readable lines for start-up logs and ``gateway check``.
    notes: list[str] = field(default_factory=list)

    def get(self, platform: str) -> Connector | None:
        return self.connectors.get(platform)


def check_routes(file: GatewayFile, known: dict[str, Platform]) -> None:
    for i, route in enumerate(file.routes):
        if route.platform not in known:
            names = ", ".join(sorted(known))
            raise ConfigError(f"routes[{i}]: platform {route.platform!r} is not a platform; known: {names}")


def build_registry(settings: Settings, file: GatewayFile, parts: Parts | None = None) -> Registry:
    """Build every enabled connector; raises ConfigError for configuration that cannot work."""
    parts = parts or Parts(settings, file)
    reg = Registry(platforms=platforms(settings))
    check_routes(file, reg.platforms)
    for platform in reg.platforms.values():
        connector = platform.inbound(parts, reg.notes)
        if connector is not None:
            reg.connectors[platform.name] = connector
    return reg
