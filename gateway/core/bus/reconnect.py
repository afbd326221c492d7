"""aio-pika's robust connection, reconnecting with exponential backoff instead of a fixed interval.

``RobustConnection`` sleeps ``self.reconnect_interval`` after every failed attempt (5 s, forever). Here
that attribute is the current backoff delay: it grows (with jitter, up to a cap) after each failed
transport attempt and is reset by a successful one. The hook is aio-pika's private
``__connect_transport`` (tested with aio-pika 9.4-10.x: ``tests/unit/test_reconnect.py`` fails when the
name goes away, and without it the connection still works, at aio-pika's fixed interval).
"""

from __future__ import annotations

from typing import Any

import structlog
from aio_pika import RobustConnection

from gateway.core.backoff import Backoff
from gateway.core.bus.diagnose import describe

log = structlog.get_logger(__name__)

_HOOK = "_RobustConnection__connect_transport"


class BackoffConnection(RobustConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.backoff = Backoff(base=1.0, cap=60.0)
        self._delay = 1.0
        super().__init__(*args, **kwargs)

    @property
    def reconnect_interval(self) -> float:
        return self._delay

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        self.backoff.base = max(0.1, float(value))
        self._delay = self.backoff.base

    async def _RobustConnection__connect_transport(self) -> None:
        try:
            await getattr(RobustConnection, _HOOK)(self)
        except BaseException as exc:
            self._delay = self.backoff.next_delay()
            if isinstance(exc, Exception):
                log.warning("broker_reconnect_failed", error=describe(exc), retry_in=round(self._delay, 1))
            raise
        self.backoff.reset()
        self._delay = self.backoff.base
