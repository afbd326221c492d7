"""structlog set-up: JSON for machines, console for people, secrets never.

Context (event id, platform, conversation key) is bound with
``structlog.contextvars`` so every line from a webhook to its reply carries it.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, BinaryIO

import orjson
import structlog

from gateway.core import tracing

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


_format_exc_info = structlog.processors.format_exc_info


def _redact_and_format(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """:func:`_redact`, then the traceback of ``exc_info`` into ``exception`` when there is one."""
    _redact(logger, method, event_dict)
    if "exc_info" in event_dict:
        return _format_exc_info(logger, method, event_dict)
    return event_dict


try:  # structlog's own registry of the context variables it binds (structlog 24-25)
    from structlog.contextvars import _CONTEXT_VARS, STRUCTLOG_KEY_PREFIX_LEN
except ImportError:  # pragma: no cover - another structlog: its public processor
    _CONTEXT_VARS = None  # type: ignore[assignment]


def _merge_context(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``structlog.contextvars.merge_contextvars``, reading only structlog's own variables.

    structlog's processor walks every context variable of the context (aiohttp's, asyncio's, ...) on
    every line; this reads the few it created, with the same result (unset or cleared = ``...``).
    """
    if _CONTEXT_VARS is None:  # pragma: no cover
        return structlog.contextvars.merge_contextvars(logger, method, event_dict)
    for name, var in _CONTEXT_VARS.items():
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(name[STRUCTLOG_KEY_PREFIX_LEN:], value)
    return event_dict


class TickWriter:
    """Log lines written once per event-loop iteration instead of once per line.

    Inside a running loop the lines of one iteration are joined and written with one ``write`` and
    one ``flush`` on the next iteration (before the loop waits on its sockets again), so nothing sits
    in a buffer while the process is idle. Outside a loop every line goes out at once, after any
    lines still held for a loop that stopped before writing them; at exit too.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lines: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def msg(self, message: bytes) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:  # no loop now, or another one: what the old one held goes first
            self.flush()
            self._loop = loop
        if loop is None:
            self._write(message + b"\n")
            return
        if not self._lines:
            loop.call_soon(self.flush)
        self._lines.append(message)

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._write(b"\n".join(lines) + b"\n")

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed (a pipe whose reader left): logging must not crash us
            pass

    log = debug = info = warn = warning = err = error = critical = exception = failure = fatal = msg


def _stamp(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """ISO-8601 UTC timestamp with microseconds, the second's text computed once per second."""
    now = time.time()
    second = int(now)
    if second != _stamp_cache[0]:
        _stamp_cache[0] = second
        _stamp_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    event_dict["timestamp"] = f"{_stamp_cache[1]}.{int((now - second) * 1e6):06d}Z"
    return event_dict


_stamp_cache: list[Any] = [-1, ""]


def _one_writer(writer: TickWriter) -> Any:
    def factory(*_: Any) -> TickWriter:
        return writer

    return factory


class ToStructlog(logging.Handler):
    """Library log records (aiormq, aio-pika, aiohttp, asyncio) through the same pipeline as ours.

    Without it a library's warning reaches stderr as bare text and its traceback as many lines, so a
    JSON log is no longer one JSON object per line. Here each record becomes one line, with the logger's
    name in ``logger`` and any traceback in the ``exception`` field.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: keep the template rather than lose the line
            message = str(record.msg)
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[0] is not None:
            fields["exc_info"] = record.exc_info
        structlog.get_logger(record.name).log(record.levelno, message, **fields)


def _route_stdlib(level: str) -> None:
    """Send every stdlib record at or above max(warning, ``level``) through structlog, and only there."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ToStructlog)]:
        root.removeHandler(handler)
    root.addHandler(ToStructlog())
    # Libraries' info lines (aiohttp's access log: one per request) stay out unless debugging.
    wanted = logging.getLevelName(level.upper())
    root.setLevel(wanted if wanted == logging.DEBUG else max(logging.WARNING, wanted))


def configure(fmt: str = "json", level: str = "info") -> None:
    renderer: Any = structlog.processors.JSONRenderer()
    factory: Any = structlog.PrintLoggerFactory(file=sys.stderr)
    stream = getattr(sys.stderr, "buffer", None)
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    elif stream is not None:  # orjson straight to bytes: a third of the cost of json.dumps + print per line
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps, option=orjson.OPT_NON_STR_KEYS)
        factory = _one_writer(TickWriter(stream))
    structlog.configure(
        processors=[
            _merge_context,
            tracing.log_ids,
            structlog.processors.add_log_level,
            _stamp,
            _redact_and_format,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib(level)
