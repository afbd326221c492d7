"""Bounded tracebacks for logs and dead letters: enough for an agent author to find the failing line,
never enough to blow an AMQP header frame or a log pipeline's line limit."""

from __future__ import annotations

import traceback

#: Longest traceback kept (the innermost frames, where the error is, are kept).
LIMIT = 4000


def bounded(exc: BaseException, limit: int = LIMIT) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip()
    if len(text) <= limit:
        return text
    return "… (outer frames cut)\n" + text[-(limit - 22) :]
