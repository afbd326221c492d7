"""The store contract, written once, run against the in-process twin (``memory``) and Redis (``real``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.core.errors import StoreUnavailable
from gateway.core.store import redis as redis_module
from gateway.core.store.base import Store
from gateway.core.store.memory import MemoryStore
from gateway.core.store.redis import RedisStore
from tests.support.services import new_namespace
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(30)


async def test_claim_is_exclusive_until_the_ttl(store: Store) -> None:
    assert await store.claim("dedupe:ev1", "first", 0.2) is None
    assert await store.claim("dedupe:ev1", "second", 0.2) is not None
    assert await store.get("dedupe:ev1") == "first"
    await eventually(lambda: store.claim("dedupe:ev1", "third", 5), until=lambda v: v is None, what="claim after ttl")
    assert await store.get("dedupe:ev1") == "third"


async def test_claim_returns_the_value_already_there(store: Store, kind: str, request: pytest.FixtureRequest) -> None:
    """The ingestor tells an in-flight delivery (``pending:…``, answer 503) from a done one (200) by this value."""
    assert await store.claim("dedupe:ev1", "pending:e1", 60) is None
    assert await store.claim("dedupe:ev1", "pending:e2", 60) == "pending:e1"
    await store.put("dedupe:ev1", "done:e1", 60)
    assert await store.claim("dedupe:ev1", "pending:e3", 60) == "done:e1"


async def test_claim_released_by_delete(store: Store) -> None:
    assert await store.claim("dedupe:ev2", "a", 60) is None
    await store.delete("dedupe:ev2")
    assert await store.claim("dedupe:ev2", "b", 60) is None


async def test_put_get_delete_with_ttl(store: Store) -> None:
    assert await store.get("k") is None
    await store.put("k", "v")
    await store.put("short", "s", ttl=0.2)
    assert await store.get("k") == "v"
    assert await store.get("short") == "s"
    await store.put("k", "v2")
    assert await store.get("k") == "v2"
    await eventually(lambda: store.get("short"), until=lambda v: v is None, what="ttl expiry")
    assert await store.get("k") == "v2"
    await store.delete("k", "missing")
    assert await store.get("k") is None
    await store.delete()  # nothing to delete is fine


async def test_put_soon_is_written_without_another_command_and_before_a_later_claim(store: Store) -> None:
    await store.put_soon("soon:a", "done:1", 30)  # alone: written within a few ms, no other batch needed
    assert await store.get("soon:a") == "done:1"
    written = store.put_soon("soon:b", "done:2", 30)
    claimed = await store.claim("soon:b", "pending:3", 30)  # queued after it: sees it
    assert claimed == "done:2"
    await written


async def test_claim_on_a_list_fails_only_that_command(store: Store) -> None:
    await store.push("soon:list", ["x"], keep=5)
    results = await asyncio.gather(
        store.claim("soon:c", "v", 30),
        store.claim("soon:list", "v", 30),
        store.claim("soon:d", "v", 30),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], StoreUnavailable)
    assert "WRONGTYPE" in str(results[1])
    assert results[2] is None


async def test_put_without_ttl_clears_an_earlier_ttl(store: Store) -> None:
    await store.put("k", "a", ttl=0.2)
    await store.put("k", "b")
    await store.put("probe", "p", ttl=0.2)
    await eventually(lambda: store.get("probe"), until=lambda v: v is None, what="the probe's expiry")
    assert await store.get("k") == "b"


async def test_push_keeps_the_last_items_and_tail_reads_oldest_first(store: Store) -> None:
    assert await store.tail("hist", 10) == []
    assert await store.length("hist") == 0
    await store.push("hist", ["a", "b", "c"], keep=5)
    await store.push("hist", ["d", "e", "f"], keep=5)
    assert await store.length("hist") == 5
    assert await store.tail("hist", 10) == ["b", "c", "d", "e", "f"]
    assert await store.tail("hist", 2) == ["e", "f"]
    assert await store.tail("hist", 0) == []
    await store.push("hist", [], keep=5)
    assert await store.length("hist") == 5
    await store.push("hist", ["g", "h", "i", "j", "k", "l", "m"], keep=3)
    assert await store.tail("hist", 10) == ["k", "l", "m"]


async def test_push_sets_its_markers_in_the_same_call_and_they_expire(store: Store) -> None:
    await store.push("hist2", ["a"], keep=5, markers=["done:1", "done:2"], marker_ttl=0.3)
    assert await store.tail("hist2", 10) == ["a"]
    assert [await store.get("done:1"), await store.get("done:2")] == ["1", "1"]
    await store.push("hist2", [], keep=5, markers=["done:3"], marker_ttl=60)  # markers alone
    assert await store.tail("hist2", 10) == ["a"]
    assert await store.get("done:3") == "1"
    await eventually(lambda: store.get("done:1"), until=lambda v: v is None, what="the marker's expiry")
    assert await store.get("done:3") == "1"


async def test_push_with_a_ttl_expires_the_list_and_the_last_push_sets_it(store: Store) -> None:
    await store.push("hist", ["a"], keep=5, ttl=60)
    await store.push("hist", ["b"], keep=5, ttl=0.2)  # the latest write decides
    assert await store.tail("hist", 5) == ["a", "b"]
    await eventually(lambda: store.length("hist"), until=lambda n: n == 0, what="the history's expiry")
    await store.push("hist", ["c"], keep=5, ttl=0.2)
    await store.push("hist", ["d"], keep=5, ttl=60)  # renewed by the next turn
    await store.push("hist", [], keep=5, markers=["done:x"], marker_ttl=0.2, ttl=0.2)  # no items: no renewal
    await store.put("probe", "p", ttl=0.2)
    await eventually(lambda: store.get("probe"), until=lambda v: v is None, what="the probe's expiry")
    assert await store.tail("hist", 5) == ["c", "d"]


async def test_push_without_a_ttl_keeps_the_earlier_expiry(store: Store) -> None:
    await store.push("hist", ["a"], keep=5, ttl=0.2)
    await store.push("hist", ["b"], keep=5)
    await eventually(lambda: store.length("hist"), until=lambda n: n == 0, what="the history's expiry")


async def test_hput_with_a_ttl_expires_the_whole_hash_and_each_write_renews_it(store: Store) -> None:
    await store.hput("mem", "x", "1", ttl=0.2)
    await store.hput("mem", "y", "2", ttl=0.2)
    assert await store.hall("mem") == {"x": "1", "y": "2"}
    await eventually(lambda: store.hall("mem"), until=lambda h: h == {}, what="the memory's expiry")
    assert await store.hget("mem", "x") is None
    await store.hput("mem", "x", "3", ttl=0.2)
    assert await store.hall("mem") == {"x": "3"}  # the expired fields do not come back with a new write
    await store.hput("mem", "y", "4", ttl=60)
    await store.put("probe", "p", ttl=0.2)
    await eventually(lambda: store.get("probe"), until=lambda v: v is None, what="the probe's expiry")
    assert await store.hall("mem") == {"x": "3", "y": "4"}


async def test_hashes(store: Store) -> None:
    assert await store.hall("mem") == {}
    assert await store.hget("mem", "x") is None
    await store.hput("mem", "x", "1")
    await store.hput("mem", "y", "2")
    await store.hput("mem", "x", "3")
    assert await store.hget("mem", "x") == "3"
    assert await store.hall("mem") == {"x": "3", "y": "2"}
    assert await store.hdel("mem", "x") is True
    assert await store.hdel("mem", "x") is False
    assert await store.hall("mem") == {"y": "2"}
    await store.delete("mem")
    assert await store.hall("mem") == {}


async def test_hmget_reads_several_fields_in_order(store: Store) -> None:
    assert await store.hmget("conv", ["a", "b"]) == [None, None]
    await store.hput("conv", "b", "2")
    await store.hput("conv", "a", "1")
    assert await store.hmget("conv", ["a", "missing", "b"]) == ["1", None, "2"]
    assert await store.hmget("conv", []) == []


async def test_hclaim_sets_a_field_once_and_keeps_the_hashs_expiry(store: Store) -> None:
    assert await store.hclaim("conv", "handoff", "first") is None
    assert await store.hclaim("conv", "handoff", "second") == "first"
    assert await store.hget("conv", "handoff") == "first"
    assert await store.hdel("conv", "handoff") is True
    assert await store.hclaim("conv", "handoff", "again") is None
    await store.hput("short", "x", "1", ttl=0.3)
    assert await store.hclaim("short", "y", "2") is None
    await eventually(lambda: store.hall("short"), until=lambda h: h == {}, what="the earlier expiry")


async def test_expire_gives_an_existing_key_a_new_expiry(store: Store) -> None:
    await store.hput("conv", "x", "1", ttl=0.2)
    await store.hput("witness", "x", "1", ttl=0.2)
    await store.expire("conv", 60)
    await eventually(lambda: store.hall("witness"), until=lambda h: h == {}, what="the first expiry passing")
    assert await store.hall("conv") == {"x": "1"}  # the new expiry holds
    await store.expire("conv", 0.2)
    await eventually(lambda: store.hall("conv"), until=lambda h: h == {}, what="the new expiry")
    await store.expire("nothing-here", 60)
    assert await store.get("nothing-here") is None


async def test_hincr_adds_to_fields_at_once_and_expires_with_its_ttl(store: Store) -> None:
    assert await store.hincr("usage", {"in": 5, "out": 2}) == {"in": 5, "out": 2}
    assert await store.hincr("usage", {"in": 3, "turns": 1}) == {"in": 8, "turns": 1}
    assert await store.hall("usage") == {"in": "8", "out": "2", "turns": "1"}
    await asyncio.gather(*(store.hincr("usage", {"out": 1}) for _ in range(20)))  # none lost under concurrency
    assert await store.hget("usage", "out") == "22"
    await store.hincr("day", {"in": 1}, ttl=0.2)
    await eventually(lambda: store.hall("day"), until=lambda h: h == {}, what="the counters' expiry")
    assert await store.hincr("day", {"in": 4}) == {"in": 4}  # counting starts again after the expiry


async def test_leases_have_one_owner(store: Store) -> None:
    keys = ["lease:0", "lease:1"]
    assert await store.acquire_lease("lease:0", "A", 10) is True
    assert await store.acquire_lease("lease:0", "B", 10) is False
    assert await store.acquire_lease("lease:0", "A", 10) is True  # re-acquiring one's own lease
    assert await store.lease_owners(keys) == ["A", None]
    assert await store.renew_leases(keys, "A", 10) == [True, False]
    assert await store.renew_leases(["lease:0"], "B", 10) == [False]
    assert await store.release_lease("lease:0", "B") is False
    assert await store.lease_owners(keys) == ["A", None]
    assert await store.release_lease("lease:0", "A") is True
    assert await store.release_lease("lease:0", "A") is False
    assert await store.lease_owners(keys) == [None, None]
    assert await store.acquire_lease("lease:0", "B", 10) is True
    assert await store.lease_owners([]) == []


async def test_lease_expiry_lets_another_acquire(store: Store) -> None:
    assert await store.acquire_lease("lease:3", "A", 0.3) is True
    assert await store.acquire_lease("lease:3", "B", 0.3) is False
    await eventually(lambda: store.acquire_lease("lease:3", "B", 10), what="B to acquire after expiry")
    assert await store.lease_owners(["lease:3"]) == ["B"]
    assert await store.renew_leases(["lease:3"], "A", 10) == [False]


async def test_renew_extends_a_lease(store: Store) -> None:
    assert await store.acquire_lease("lease:4", "A", 0.3) is True
    assert await store.renew_leases(["lease:4"], "A", 10) == [True]
    await store.put("probe", "p", ttl=0.4)
    await eventually(lambda: store.get("probe"), until=lambda v: v is None, what="the probe's expiry")
    assert await store.lease_owners(["lease:4"]) == ["A"]


async def test_membership_heartbeat_expiry_and_leave(store: Store) -> None:
    assert await store.members("consumers") == []
    await store.heartbeat("consumers", "b", 10)
    await store.heartbeat("consumers", "a", 10)
    await store.heartbeat("consumers", "short", 0.2)
    assert await store.members("consumers") == ["a", "b", "short"]
    await eventually(lambda: store.members("consumers"), until=lambda m: m == ["a", "b"], what="short to expire")
    await store.leave("consumers", "a")
    await store.leave("consumers", "never-joined")
    assert await store.members("consumers") == ["b"]
    assert await store.members("other-group") == []


async def test_reserve_token_burst_then_rate(store: Store) -> None:
    assert await store.reserve_token("tg:bot", 10, 2) == 0
    assert await store.reserve_token("tg:bot", 10, 2) == 0
    wait = await store.reserve_token("tg:bot", 10, 2)
    assert 0.05 < wait <= 0.15
    # Debt accumulates: the next caller waits behind the previous one.
    assert 0.15 < await store.reserve_token("tg:bot", 10, 2) <= 0.25
    # Other keys have their own bucket.
    assert await store.reserve_token("tg:other", 10, 2) == 0


async def test_namespaces_are_isolated(store: Store, kind: str, backend: tuple[str, str, str, str]) -> None:
    other_ns = new_namespace()
    other: Store = MemoryStore(other_ns) if kind == "memory" else RedisStore(backend[2], other_ns)
    try:
        await store.put("k", "mine")
        await store.hput("h", "f", "mine")
        await store.push("l", ["mine"], keep=10)
        assert await store.acquire_lease("lease:0", "A", 10)
        await store.heartbeat("g", "A", 10)
        assert await other.get("k") is None
        assert await other.hall("h") == {}
        assert await other.tail("l", 10) == []
        assert await other.lease_owners(["lease:0"]) == [None]
        assert await other.members("g") == []
        assert await other.claim("k", "theirs", 10) is None
        assert await store.get("k") == "mine"
    finally:
        await other.delete("k")
        await other.close()


# -- real Redis only ----------------------------------------------------------------------------------------


@pytest.fixture
async def redis_store(services: tuple[str, str, str]) -> AsyncIterator[RedisStore]:
    _, redis_url, ns = services
    s = RedisStore(redis_url, ns)
    yield s
    await s.close()


@pytest.mark.integration
async def test_auto_pipelining_distinct_keys_under_concurrency(redis_store: RedisStore) -> None:
    results = await asyncio.gather(*(redis_store.claim(f"dedupe:{i}", str(i), 60) for i in range(500)))
    assert results == [None] * 500
    values = await asyncio.gather(*(redis_store.get(f"dedupe:{i}") for i in range(500)))
    assert values == [str(i) for i in range(500)]


@pytest.mark.integration
async def test_auto_pipelining_same_key_has_exactly_one_winner(redis_store: RedisStore) -> None:
    results = await asyncio.gather(*(redis_store.claim("dedupe:same", f"c{i}", 60) for i in range(500)))
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert await redis_store.get("dedupe:same") == f"c{winners[0]}"


@pytest.mark.integration
async def test_auto_pipelining_mixed_commands_keep_their_own_results(redis_store: RedisStore) -> None:
    await redis_store.put("a", "1")
    await redis_store.hput("h", "f", "v")
    got = await asyncio.gather(
        redis_store.get("a"),
        redis_store.hget("h", "f"),
        redis_store.hall("h"),
        redis_store.length("nothing"),
        redis_store.members("g"),
        redis_store.lease_owners(["lease:0"]),
    )
    assert list(got) == ["1", "v", {"f": "v"}, 0, [], [None]]


@pytest.mark.integration
async def test_a_command_error_fails_only_its_caller(redis_store: RedisStore) -> None:
    await redis_store.put("text", "not a list")
    good, bad = await asyncio.gather(redis_store.get("text"), redis_store.length("text"), return_exceptions=True)
    assert good == "not a list"
    assert isinstance(bad, StoreUnavailable)


@pytest.mark.integration
async def test_an_error_reply_mid_batch_fails_only_that_command(redis_store: RedisStore) -> None:
    await redis_store.put("text", "not a list")
    await redis_store.put("a", "1")
    got = await asyncio.gather(
        redis_store.get("a"),
        redis_store.push("hist", ["x"], keep=5),
        redis_store.length("text"),  # WRONGTYPE
        redis_store.claim("a", "2", 60),
        redis_store.tail("hist", 5),
        return_exceptions=True,
    )
    assert [got[0], got[1], got[3], got[4]] == ["1", None, "1", ["x"]]
    assert isinstance(got[2], StoreUnavailable)
    assert str(got[2]).startswith("Redis error: WRONGTYPE")
    assert await redis_store.get("a") == "1"  # the connection stays usable


@pytest.mark.integration
async def test_scripts_run_again_after_redis_forgets_them(redis_store: RedisStore) -> None:
    """Scripts go by EVALSHA; after SCRIPT FLUSH (or a restart) the NOSCRIPT replies are re-sent as EVAL."""
    # Every script once, so the store believes they are all loaded.
    await redis_store.push("warm", ["w"], keep=1)
    assert await redis_store.acquire_lease("lease:0", "A", 10) is True
    assert await redis_store.renew_leases(["lease:0"], "A", 10) == [True]
    assert await redis_store.release_lease("lease:9", "A") is False
    assert await redis_store.reserve_token("tg:warm", 10, 2) == 0
    await redis_store._client.script_flush()
    got = await asyncio.gather(
        redis_store.push("hist", ["a", "b"], keep=5, markers=["done:1"], marker_ttl=60),
        redis_store.acquire_lease("lease:0", "B", 10),
        redis_store.renew_leases(["lease:0", "lease:1"], "A", 10),
        redis_store.release_lease("lease:9", "A"),
        redis_store.reserve_token("tg:bot", 10, 2),
        redis_store.get("a"),
    )
    assert list(got) == [None, False, [True, False], False, 0, None]
    assert await redis_store.tail("hist", 5) == ["a", "b"]
    assert await redis_store.get("done:1") == "1"
    scripts = [redis_module._PUSH, redis_module._ACQUIRE, redis_module._RENEW]
    scripts += [redis_module._RELEASE, redis_module._BUCKET]
    assert await redis_store._client.script_exists(*(s.sha for s in scripts)) == [True] * 5  # loaded again
    await redis_store.push("hist", ["c"], keep=5)
    assert await redis_store.tail("hist", 5) == ["a", "b", "c"]


async def test_closed_port_raises_store_unavailable(namespace: str) -> None:
    s = RedisStore("redis://127.0.0.1:1/0", namespace, timeout=1)
    started = time.monotonic()
    try:
        assert await s.ping() is False
        with pytest.raises(StoreUnavailable):
            await s.claim("dedupe:x", "v", 10)
        with pytest.raises(StoreUnavailable):
            await s.get("x")
    finally:
        await s.close()
    assert time.monotonic() - started < 10
