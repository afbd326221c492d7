"""Building the platform senders, each from its platform (only those with credentials)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from connectors.console import ConsoleSender
from connectors.outbound import PlatformSender
from connectors.platform import Parts, Platform

log = structlog.get_logger(__name__)


def build_senders(
    parts: Parts, platforms: Mapping[str, Platform], *, console_fallback: bool = False
) -> dict[str, PlatformSender]:
    """One sender per platform that can send. Without credentials a platform's replies are dead-lettered, or,
    in ``gateway dev`` (``console_fallback``), printed by a console stand-in."""
    out: dict[str, PlatformSender] = {}
    for name, platform in platforms.items():
        sender = platform.outbound(parts)
        if sender is not None:
            out[name] = sender
        elif console_fallback and platform.console_fallback:
            out[name] = ConsoleSender(name)
            log.info("no_sender", platform=name, note=f"no credentials: {name} replies are printed here")
        else:
            log.info("no_sender", platform=name, note=f"no credentials: {name} replies are dead-lettered")
    return out
