"""structlog set-up: JSON for machines, console for people, secrets never.

Context (event id, platform, conversation key) is bound with
``structlog.contextvars`` so every line from a webhook to its reply carries it.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from gateway import tracing

#: Keys whose values never reach a log line, whatever the caller passes.
_REDACT = ("secret", "token", "signature", "password", "authorization", "body", "raw", "api_key")


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _REDACT)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [k for k in event_dict if _secret_key(k)]:
        event_dict[key] = "[redacted]"
    return event_dict


def configure(fmt: str = "json", level: str = "info") -> None:
    renderer: Any = structlog.processors.JSONRenderer()
    factory: Any = structlog.PrintLoggerFactory(file=sys.stderr)
    stream = getattr(sys.stderr, "buffer", None)
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    elif stream is not None:  # orjson straight to bytes: a third of the cost of json.dumps + print per line
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps, option=orjson.OPT_NON_STR_KEYS)
        factory = structlog.BytesLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            tracing.log_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
