"""The log writer: lines of one loop iteration go out together, none is held while the process idles."""

from __future__ import annotations

import asyncio
import io

from gateway.logs import TickWriter


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
