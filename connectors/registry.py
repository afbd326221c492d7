"""The one list of platforms. Adding a platform is one folder under ``connectors/`` and one line here.

A platform that lives outside this repository is named by import path in ``GATEWAY_PLATFORMS``
(``"package.module:PLATFORM"``, comma-separated); it is loaded the way agents are.
"""

from __future__ import annotations

from connectors.discord.platform import PLATFORM as DISCORD
from connectors.platform import Platform
from connectors.slack.platform import PLATFORM as SLACK
from connectors.teams.platform import PLATFORM as TEAMS
from connectors.telegram.platform import PLATFORM as TELEGRAM
from connectors.web.platform import PLATFORM as WEB
from connectors.webhooks.platform import PLATFORM as WEBHOOK
from connectors.whatsapp.platform import PLATFORM as WHATSAPP
from gateway.core.errors import ConfigError
from gateway.core.imports import import_path
from gateway.core.settings import Settings

BUILT_IN: tuple[Platform, ...] = (
    SLACK,
    TELEGRAM,
    WEBHOOK,
    WEB,
    WHATSAPP,
    TEAMS,
    DISCORD,
)


def platforms(settings: Settings) -> dict[str, Platform]:
    """Every platform this process knows, by name: the built-in ones, then ``GATEWAY_PLATFORMS``."""
    out = {p.name: p for p in BUILT_IN}
    for path in filter(None, (p.strip() for p in (settings.extra_platforms or "").split(","))):
        platform = import_path(path, "GATEWAY_PLATFORMS")
        if not isinstance(platform, Platform):
            raise ConfigError(f"GATEWAY_PLATFORMS: {path!r} is a {type(platform).__name__}, not a Platform")
        if platform.name in out:
            raise ConfigError(f"GATEWAY_PLATFORMS: {path!r} is named {platform.name!r}, which is already a platform")
        out[platform.name] = platform
    return out
