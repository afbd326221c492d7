"""Outbound rate limits.

Per chat (Slack about 1 message/s per channel with short bursts; Telegram 1/s
per chat and 20/min per group) the limit is kept in this process: the chat's
conversations live on partitions this process owns. Per bot or workspace
(Telegram about 30/s per bot) the limit is shared across processes through a
token bucket in the store. Both reserve (go into debt) so waiting callers are
served in order. https://api.slack.com/apis/rate-limits
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from gateway.events import OutboundMessage
from gateway.store.base import Store


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


@dataclass(frozen=True)
class Limits:
    slack_channel_rate: float = 1.0
    slack_channel_burst: float = 3.0
    slack_workspace_rate: float = 50.0
    telegram_chat_rate: float = 1.0
    telegram_chat_burst: float = 3.0
    telegram_group_per_minute: float = 20.0
    telegram_bot_rate: float = 30.0


class RateLimiter:
    def __init__(self, store: Store, limits: Limits) -> None:
        self._store = store
        self._limits = limits
        self._local: dict[str, LocalBucket] = {}

    def _bucket(self, key: str, rate: float, burst: float) -> LocalBucket:
        bucket = self._local.get(key)
        if bucket is None:
            bucket = self._local[key] = LocalBucket(rate, burst)
        return bucket

    def _local_wait(self, message: OutboundMessage) -> float:
        to, lim = message.to, self._limits
        chat = f"{to.platform}:{to.bot}:{to.channel}"
        if to.platform == "slack":
            return self._bucket(chat, lim.slack_channel_rate, lim.slack_channel_burst).reserve()
        if to.platform == "telegram":
            wait = self._bucket(chat, lim.telegram_chat_rate, lim.telegram_chat_burst).reserve()
            if to.channel.startswith("-"):  # groups, supergroups and channels have negative ids
                per_min = lim.telegram_group_per_minute
                wait = max(wait, self._bucket(chat + ":min", per_min / 60, per_min).reserve())
            return wait
        return 0.0

    async def _global_wait(self, message: OutboundMessage) -> float:
        to, lim = message.to, self._limits
        if to.platform == "telegram":
            return await self._store.reserve_token(f"telegram:{to.bot}", lim.telegram_bot_rate, lim.telegram_bot_rate)
        if to.platform == "slack":
            rate = lim.slack_workspace_rate
            return await self._store.reserve_token(f"slack:{to.bot}", rate, rate)
        return 0.0

    async def wait(self, message: OutboundMessage) -> float:
        """Sleep until ``message`` may go out; return how long that was."""
        if message.action == "typing":
            return 0.0
        delay = max(self._local_wait(message), await self._global_wait(message))
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def forget_idle(self) -> None:
        """Drop full local buckets (they carry no state worth keeping)."""
        now = time.monotonic()
        self._local = {
            k: b for k, b in self._local.items() if min(b.burst, b._tokens + (now - b._at) * b.rate) < b.burst
        }
