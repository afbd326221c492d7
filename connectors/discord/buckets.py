"""Discord's own rate limit headers, read after every call so the next one waits instead of meeting a 429.

Discord asks clients not to hard-code limits but to follow the headers: ``X-RateLimit-Bucket`` names the
bucket a route shares (per top-level resource: the channel, or the webhook id + token), and when
``X-RateLimit-Remaining`` is 0 the next call to it waits ``X-RateLimit-Reset-After`` seconds. A 429 names its
wait in the JSON body (``retry_after``, seconds, a float) and in ``Retry-After``; ``"global": true`` (or
``X-RateLimit-Global``) holds every route. The gateway's own token buckets (``DiscordRates``, platform.py) keep
the steady pace under the documented figures; these headers are the platform's word on top of them.

Followed: Discord developer docs "Rate Limits" (header format, exceeding a rate limit, global rate limit: 50
requests per second), API v10, checked 2026-12.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping


def _float(value: object, default: float) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default


class Buckets:
    """Per route (method + major resource) the bucket it is in, and per bucket until when it is spent."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._route_bucket: dict[str, str] = {}
        self._blocked_until: dict[str, float] = {}
        self._global_until = 0.0

    def wait_for(self, route: str) -> float:
        """Seconds to wait before calling ``route`` (0 when it may go now)."""
        now = self._clock()
        bucket = self._route_bucket.get(route, route)
        return max(self._blocked_until.get(bucket, 0.0) - now, self._global_until - now, 0.0)

    def update(self, route: str, headers: Mapping[str, str]) -> None:
        bucket = headers.get("X-RateLimit-Bucket")
        if bucket:
            self._route_bucket[route] = bucket
        key = bucket or route
        if headers.get("X-RateLimit-Remaining") == "0":
            self._blocked_until[key] = self._clock() + _float(headers.get("X-RateLimit-Reset-After"), 1.0)
        else:
            self._blocked_until.pop(key, None)

    def limited(self, route: str, headers: Mapping[str, str], body: bytes) -> float:
        """A 429: how long to wait (the body's ``retry_after``, else ``Retry-After``), remembered for the route."""
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        wait = _float(answer.get("retry_after"), _float(headers.get("Retry-After"), 1.0))
        until = self._clock() + wait
        if answer.get("global") or headers.get("X-RateLimit-Global", "").lower() == "true":
            self._global_until = max(self._global_until, until)
        else:
            key = headers.get("X-RateLimit-Bucket") or self._route_bucket.get(route, route)
            self._blocked_until[key] = until
        return wait
