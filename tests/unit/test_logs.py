"""The log writer: lines of one loop iteration go out together, none is held while the process idles."""

from __future__ import annotations

import asyncio
import io

from gateway.core.logs import TickWriter


def test_outside_a_loop_each_line_is_written_at_once() -> None:
    out = io.BytesIO()
    writer = TickWriter(out)
    writer.info(b'{"event":"one"}')
    assert out.getvalue() == b'{"event":"one"}\n'
    writer.error(b'{"event":"two"}')
    assert out.getvalue() == b'{"event":"one"}\n{"event":"two"}\n'


async def test_lines_of_one_iteration_are_written_together_on_the_next() -> None:
    out = io.BytesIO()
    writer = TickWriter(out)
    writer.info(b"a")
    writer.info(b"b")
    assert out.getvalue() == b""  # held until the loop moves on
    await asyncio.sleep(0)
    assert out.getvalue() == b"a\nb\n"
    writer.info(b"c")
    await asyncio.sleep(0)
    assert out.getvalue() == b"a\nb\nc\n"


def test_lines_held_by_a_loop_that_stopped_are_written_before_the_next_ones() -> None:
    out = io.BytesIO()
    writer = TickWriter(out)
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        writer.info(b"last words of the loop")
        loop.stop()  # stops after this iteration: the write scheduled for the next one never runs

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    assert out.getvalue() == b""  # held
    writer.info(b"no loop")
    assert out.getvalue() == b"last words of the loop\nno loop\n"


class _BrokenOnce(io.BytesIO):
    """A stream whose reader went away once (BrokenPipeError), then came back."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.broken:
            self.broken = False
            raise BrokenPipeError
        return super().write(data)


def test_a_failed_write_loses_only_its_own_lines_and_logging_goes_on() -> None:
    out = _BrokenOnce()
    writer = TickWriter(out)
    writer.info(b"lost with the pipe")
    writer.info(b"after")
    assert out.getvalue() == b"after\n"


def test_library_records_and_their_tracebacks_are_json_lines_like_ours() -> None:
    """aiormq's, asyncio's and other libraries' records go through structlog: every stderr line is one JSON
    object, the traceback a field of the line, not text of its own."""
    import json
    import subprocess
    import sys

    program = """
import asyncio, logging
from gateway.core import logs
logs.configure("json", "info")
logging.getLogger("aiormq.connection").warning("error when creating transport %s", "amqp://x")
try:
    raise ConnectionRefusedError(111, "Connect call failed")
except OSError:
    logging.getLogger("asyncio").exception("Task exception was never retrieved")
logging.getLogger("aiohttp.access").info("one line per request: not logged unless debugging")
logging.getLogger("odd").warning("%d widgets", "not a number")
import structlog
structlog.get_logger("gateway").info("ours")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # raises on any non-JSON line
    assert [(r.get("logger", "-"), r["event"], r["level"]) for r in lines] == [
        ("aiormq.connection", "error when creating transport amqp://x", "warning"),
        ("asyncio", "Task exception was never retrieved", "error"),
        ("odd", "%d widgets", "warning"),
        ("-", "ours", "info"),
    ]
    assert "ConnectionRefusedError: [Errno 111] Connect call failed" in lines[1]["exception"]
    assert "Traceback (most recent call last)" in lines[1]["exception"]
