"""Outbound rate limits, as each platform's :class:`~connectors.platform.RatePolicy` says.

Per chat (Slack about 1 message/s per channel with short bursts; Telegram 1/s per chat and 20/min per group)
the buckets are kept in this process: the chat's conversations live on partitions this process owns. Per bot
or workspace (Telegram about 30/s per bot) the bucket is shared across processes in the store. Both reserve
(go into debt), so waiting callers are served in order. A platform without a policy is refused when the
limiter is built: no platform gets no limit by omission. Idle local buckets are forgotten (``forget_idle``,
called by the sender every minute), so one-off chats do not accumulate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from connectors.platform import RatePolicy
from gateway.core.errors import ConfigError
from gateway.core.events import AMBIENT_ACTIONS, OutboundMessage
from gateway.core.store.base import Store


class LocalBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()

    def reserve(self) -> float:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate) - 1
        self._at = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def full(self, now: float) -> bool:
        return min(self.burst, self._tokens + (now - self._at) * self.rate) >= self.burst


class RateLimiter:
    def __init__(self, store: Store, policies: Mapping[str, RatePolicy], *, senders: Iterable[str] = ()) -> None:
        missing = sorted(set(senders) - set(policies))
        if missing:
            raise ConfigError(f"no outbound rate policy for platform(s) {', '.join(missing)}: refusing to start")
        self._store = store
        self._policies = dict(policies)
        self._local: dict[str, LocalBucket] = {}

    def _policy(self, message: OutboundMessage) -> RatePolicy:
        policy = self._policies.get(message.to.platform)
        if policy is None:
            raise ConfigError(f"no outbound rate policy for platform {message.to.platform!r}")
        return policy

    def _local_wait(self, policy: RatePolicy, message: OutboundMessage) -> float:
        wait = 0.0
        for b in policy.local(message.to):
            bucket = self._local.get(b.key)
            if bucket is None:
                bucket = self._local[b.key] = LocalBucket(b.rate, b.burst)
            wait = max(wait, bucket.reserve())
        return wait

    async def _global_wait(self, policy: RatePolicy, message: OutboundMessage) -> float:
        wait = 0.0
        for b in policy.shared(message.to):
            wait = max(wait, await self._store.reserve_token(b.key, b.rate, b.burst))
        return wait

    async def wait(self, message: OutboundMessage) -> float:
        """Sleep until ``message`` may go out; return how long that was."""
        if message.action in AMBIENT_ACTIONS:
            return 0.0
        policy = self._policy(message)
        delay = max(self._local_wait(policy, message), await self._global_wait(policy, message))
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def forget_idle(self) -> int:
        """Drop full local buckets (they carry no state worth keeping); return how many are left."""
        now = time.monotonic()
        self._local = {k: b for k, b in self._local.items() if not b.full(now)}
        return len(self._local)
