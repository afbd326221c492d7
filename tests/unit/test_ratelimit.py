"""Outbound rate limits: local per-chat buckets and the shared per-bot bucket (store twin).

Waits are asserted from the returned values. The limiter and the store twin read a fake clock, and the
limiter's sleep advances it, so the values are exact and nothing really sleeps.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from connectors.platform import RatePolicy
from connectors.registry import BUILT_IN
from consumers.ratelimit import LocalBucket, RateLimiter
from gateway.core.errors import ConfigError
from gateway.core.events import OutboundAction, OutboundMessage, Platform, ReplyAddress
from gateway.core.settings import Settings
from gateway.core.store.memory import MemoryStore

pytestmark = pytest.mark.timeout(10)

HIGH = 1_000_000.0  # a limit that never bites


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Only these two modules see the fake clock; the event loop keeps the real one."""
    c = Clock()
    fake_time = SimpleNamespace(monotonic=c.monotonic)
    monkeypatch.setattr("consumers.ratelimit.time", fake_time)
    monkeypatch.setattr("gateway.core.store.memory.time", fake_time)
    monkeypatch.setattr("consumers.ratelimit.asyncio", SimpleNamespace(sleep=c.sleep))
    return c


def Limits(**settings: float) -> dict[str, RatePolicy]:
    """Every built-in platform's policy, built by the platform from these settings (as `gateway consume` does)."""
    built = Settings(**settings)  # type: ignore[arg-type]
    return {p.name: p.rate_policy(built) for p in BUILT_IN}


def message(platform: Platform, channel: str, *, bot: str = "b1", action: OutboundAction = "reply") -> OutboundMessage:
    return OutboundMessage(
        id="o1",
        event_id="e1",
        conversation_key=f"{platform}:{bot}:{channel}",
        action=action,
        to=ReplyAddress(platform=platform, bot=bot, channel=channel),
        text="hi",
    )


def test_local_bucket_burst_then_rate() -> None:
    bucket = LocalBucket(rate=10, burst=3)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # debt accumulates: callers are served in order


def test_local_bucket_refills_over_time(clock: Clock) -> None:
    bucket = LocalBucket(rate=10, burst=2)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    clock.now += 0.1
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)
    clock.now += 10
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]  # never more than the burst


async def test_slack_channel_limit_is_per_channel(clock: Clock) -> None:
    limits = Limits(slack_channel_rate=100, slack_channel_burst=2, slack_workspace_rate=HIGH)
    limiter = RateLimiter(MemoryStore("t"), limits)
    waits = [await limiter.wait(message("slack", "C1")) for _ in range(3)]
    assert waits == [0.0, 0.0, pytest.approx(0.01)]
    assert clock.slept == [pytest.approx(0.01)]  # wait() sleeps what it returns
    assert await limiter.wait(message("slack", "C2")) == 0.0
    assert await limiter.wait(message("slack", "C1", bot="T2")) == 0.0  # another workspace, another channel


async def test_telegram_chat_limit() -> None:
    limits = Limits(telegram_chat_rate=100, telegram_chat_burst=1, telegram_bot_rate=HIGH)
    limiter = RateLimiter(MemoryStore("t"), limits)
    assert await limiter.wait(message("telegram", "42")) == 0.0
    assert await limiter.wait(message("telegram", "42")) == pytest.approx(0.01)
    assert await limiter.wait(message("telegram", "43")) == 0.0


async def test_telegram_group_per_minute_bucket_applies_to_groups_only() -> None:
    # 20/min: a burst of 20, then one every 3 s.
    limits = Limits(
        telegram_chat_rate=HIGH, telegram_chat_burst=HIGH, telegram_group_per_minute=20, telegram_bot_rate=HIGH
    )
    limiter = RateLimiter(MemoryStore("t"), limits)
    group = [await limiter.wait(message("telegram", "-100123")) for _ in range(21)]
    assert group == [0.0] * 20 + [pytest.approx(3.0)]
    private = [await limiter.wait(message("telegram", "100123")) for _ in range(21)]
    assert private == [0.0] * 21


async def test_the_longer_of_chat_and_group_waits_wins() -> None:
    limits = Limits(telegram_chat_rate=1, telegram_chat_burst=3, telegram_group_per_minute=3, telegram_bot_rate=HIGH)
    limiter = RateLimiter(MemoryStore("t"), limits)
    waits = [await limiter.wait(message("telegram", "-5")) for _ in range(4)]
    # The 4th: the chat bucket refilled during nothing (time only moves by our sleeps), the group one
    # needs 20 s for one token (3/min).
    assert waits == [0.0, 0.0, 0.0, pytest.approx(20.0)]


async def test_telegram_bot_limit_is_shared_through_the_store() -> None:
    store = MemoryStore("t")
    limits = Limits(telegram_chat_rate=HIGH, telegram_chat_burst=HIGH, telegram_bot_rate=30)
    # Two processes (two limiters) share one bucket per bot.
    first, second = RateLimiter(store, limits), RateLimiter(store, limits)
    waits = [await (first if i % 2 else second).wait(message("telegram", str(i))) for i in range(30)]
    assert waits == [0.0] * 30
    # Over the burst each caller waits for its own token: one every 1/30 s, whichever process asks.
    assert await first.wait(message("telegram", "500")) == pytest.approx(1 / 30)
    assert await second.wait(message("telegram", "501")) == pytest.approx(1 / 30)
    assert await first.wait(message("telegram", "502")) == pytest.approx(1 / 30)
    assert await first.wait(message("telegram", "1", bot="other")) == 0.0


async def test_slack_workspace_limit_is_shared_through_the_store() -> None:
    store = MemoryStore("t")
    limits = Limits(slack_channel_rate=HIGH, slack_channel_burst=HIGH, slack_workspace_rate=50)
    limiter = RateLimiter(store, limits)
    waits = [await limiter.wait(message("slack", f"C{i}")) for i in range(50)]
    assert waits == [0.0] * 50
    assert await limiter.wait(message("slack", "C999")) == pytest.approx(0.02)


async def test_typing_and_webhooks_are_not_limited() -> None:
    limits = Limits(telegram_chat_rate=0.001, telegram_chat_burst=1, telegram_bot_rate=0.001)
    limiter = RateLimiter(MemoryStore("t"), limits)
    assert [await limiter.wait(message("telegram", "42", action="typing")) for _ in range(5)] == [0.0] * 5
    assert [await limiter.wait(message("webhook", "cust")) for _ in range(5)] == [0.0] * 5


async def test_forget_idle_drops_only_full_buckets() -> None:
    limits = Limits(slack_channel_rate=0.001, slack_channel_burst=2, slack_workspace_rate=HIGH)
    limiter = RateLimiter(MemoryStore("t"), limits)
    await limiter.wait(message("slack", "C1"))
    limiter._local["slack:b1:C2"] = LocalBucket(1, 1)  # created, never used: full
    assert limiter.forget_idle() == 1
    assert set(limiter._local) == {"slack:b1:C1"}


def test_a_platform_that_sends_without_a_rate_policy_is_refused_at_start() -> None:
    policies = Limits()
    del policies["telegram"]
    with pytest.raises(ConfigError, match=r"no outbound rate policy for platform\(s\) telegram"):
        RateLimiter(MemoryStore("t"), policies, senders=["slack", "telegram"])


async def test_a_message_to_a_platform_without_a_policy_is_not_sent_unlimited() -> None:
    limiter = RateLimiter(MemoryStore("t"), Limits())
    with pytest.raises(ConfigError, match="no outbound rate policy for platform 'toy'"):
        await limiter.wait(message("toy", "c1"))
