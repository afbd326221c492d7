"""Redis store with transparent auto-pipelining.

Every command issued in the same event-loop tick goes to Redis in one
pipeline: with hundreds of concurrent requests or turns this turns hundreds of
round trips (about 150 µs of client CPU each through ``redis.asyncio``) into
a few. Callers still ``await`` each command and get its own result or error.

The pipeline skips redis-py's ``Pipeline`` (response callbacks, a timeout and
bookkeeping per reply) but keeps redis-py's connection pool, URL parsing,
auth, TLS, reconnects, health checks and retry policy: it packs the batch
itself, writes it to a pooled connection in one go and reads the raw replies
with ``read_response`` under one deadline (``socket_timeout``) for the whole
batch. Replies are what Redis sent (``str`` with ``decode_responses``); each
store method converts what it needs. A connection error or timeout fails
every command of the batch with :class:`StoreUnavailable` (the connection is
disconnected, never handed back to the pool half-read); an error reply fails
only its own command with ``StoreUnavailable("Redis error: …")``.

Lua scripts run by ``EVALSHA``: a batch is preceded by ``SCRIPT LOAD`` of the
scripts it uses that this store has not loaded yet. If Redis lost them since
(restart, failover, ``SCRIPT FLUSH``) the ``NOSCRIPT`` replies are re-sent
as ``EVAL`` in a second round trip, so those commands run after the rest of
their batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError, NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.core.errors import StoreUnavailable


class _Script:
    """A Lua script run by ``EVALSHA`` (the digest is computed here, as Redis does)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


_RENEW = _Script(
    """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
)
_RELEASE = _Script(
    """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
)
_ACQUIRE = _Script(
    """
local cur = redis.call('get', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
)
# A turn's record in one command: history append + trim (+ its expiry, ms, when > 0), done markers.
_PUSH = _Script(
    """
local n = tonumber(ARGV[4])
if n > 0 then
  redis.call('rpush', KEYS[1], unpack(ARGV, 5, 4 + n))
  redis.call('ltrim', KEYS[1], -tonumber(ARGV[1]), -1)
  if tonumber(ARGV[3]) > 0 then
    redis.call('pexpire', KEYS[1], ARGV[3])
  end
end
for i = 2, #KEYS do
  redis.call('set', KEYS[i], '1', 'PX', ARGV[2])
end
return 1
"""
)
# Counters: HINCRBY each (field, by) pair, then the expiry (ms, when > 0); the new values, in order.
_HINCR = _Script(
    """
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('hincrby', KEYS[1], ARGV[i], ARGV[i + 1])
end
if tonumber(ARGV[1]) > 0 then
  redis.call('pexpire', KEYS[1], ARGV[1])
end
return out
"""
)
# Reservation-style token bucket: tokens may go negative, the caller waits off the debt.
_BUCKET = _Script(
    """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('hmget', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate) - 1
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('pexpire', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""
)


# One queued command: its arguments, the caller's future, and the script when it is an EVALSHA.
_Entry: TypeAlias = tuple[tuple[Any, ...], "asyncio.Future[Any]", _Script | None]
_ScriptEntry: TypeAlias = tuple[tuple[Any, ...], "asyncio.Future[Any]", _Script]


#: Longest a command queued with ``execute_soon`` waits for another command's batch to ride with.
SOON = 0.002


class _AutoPipeline:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pool = client.connection_pool
        encoder = self._pool.get_encoder()  # type: ignore[no-untyped-call]
        self._encode: Callable[[Any], bytes] = encoder.encode
        self._encoding: str = encoder.encoding
        self._encoding_errors: str = encoder.encoding_errors
        self._pending: list[_Entry] = []
        self._scheduled = False  # a flush task will take the pending commands
        self._timer: asyncio.TimerHandle | None = None  # flushes commands queued with execute_soon
        self._tasks: set[asyncio.Task[None]] = set()
        # Digests of the scripts Redis is believed to hold (forgotten after a connection error or NOSCRIPT).
        self._loaded: set[str] = set()

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future gets Redis's raw reply."""
        return self._queue(args, None)

    def execute_soon(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command that rides with the next batch (at most :data:`SOON` s later when none comes)."""
        return self._queue(args, None, soon=True)

    def evalsha(self, script: _Script, *args: Any) -> asyncio.Future[Any]:
        """Queue ``EVALSHA script numkeys key… arg…``; ``args`` start at ``numkeys``."""
        return self._queue(("EVALSHA", script.sha, *args), script)

    def _queue(self, args: tuple[Any, ...], script: _Script | None, *, soon: bool = False) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, fut, script))
        if not self._scheduled:
            if not soon:
                self._start_flush()
            elif self._timer is None:
                self._timer = loop.call_later(SOON, self._on_timer)
        return fut

    def _on_timer(self) -> None:
        self._timer = None
        self._start_flush()

    def _start_flush(self) -> None:
        if self._scheduled or not self._pending:
            return
        self._scheduled = True
        # The task's first step runs on the next loop iteration: it takes every command queued until then.
        task = asyncio.get_running_loop().create_task(self._flush_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_pending(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        await self._flush(batch)

    async def drain(self) -> None:
        """Send what is queued (commands waiting for a batch to ride with) and wait for every batch."""
        self._start_flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _pack(self, args: tuple[Any, ...]) -> bytes:
        """One command in RESP, encoded as redis-py's ``Encoder`` does (str, int, float, bytes; not bool)."""
        encoding, errors, encode = self._encoding, self._encoding_errors, self._encode
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is str:
                data = arg.encode(encoding, errors)
            elif type(arg) is int:
                data = b"%d" % arg
            else:
                data = encode(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    async def _flush(self, batch: list[_Entry]) -> None:
        loaded = self._loaded
        loads = {s.sha: s for _, _, s in batch if s is not None and s.sha not in loaded}
        noscript = await self._send(batch, loads)
        if noscript:
            # Redis lost the scripts (restart, failover, SCRIPT FLUSH): load them again, run these by EVAL.
            scripts = {script.sha: script for _, _, script in noscript}
            loaded.difference_update(scripts)
            await self._send([(("EVAL", script.text, *args[2:]), fut, None) for args, fut, script in noscript], scripts)

    async def _send(self, batch: list[_Entry], loads: dict[str, _Script]) -> list[_ScriptEntry]:
        """One round trip for ``batch``, preceded by ``SCRIPT LOAD`` of ``loads``; settle the futures.

        Returns the EVALSHA commands Redis answered with NOSCRIPT; their futures are left pending.
        """
        pack = self._pack
        try:
            wire = [pack(args) for args, _, _ in batch]
        except DataError:
            batch, wire = self._drop_unencodable(batch)
            if not batch:
                return []
        if loads:
            wire[:0] = [pack(("SCRIPT", "LOAD", s.text)) for s in loads.values()]
        try:
            replies = await self._round_trip(wire)
        except (RedisError, OSError) as exc:
            self._loaded.clear()  # Redis may come back without our scripts
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(StoreUnavailable(f"Redis did not answer: {exc}"))
            return []
        except asyncio.CancelledError:
            for _, fut, _ in batch:
                fut.cancel()
            raise
        if loads:
            self._loaded.update(sha for sha, r in zip(loads, replies, strict=False) if not isinstance(r, Exception))
            del replies[: len(loads)]
        noscript: list[_ScriptEntry] = []
        for (args, fut, script), reply in zip(batch, replies, strict=True):
            if isinstance(reply, ResponseError):
                if script is not None and isinstance(reply, NoScriptError):
                    noscript.append((args, fut, script))  # runs again even if its caller gave up, as it would have
                elif not fut.done():
                    fut.set_exception(StoreUnavailable(f"Redis error: {reply}"))
            elif not fut.done():
                fut.set_result(reply)
        return noscript

    def _drop_unencodable(self, batch: list[_Entry]) -> tuple[list[_Entry], list[bytes]]:
        """Fail the commands whose arguments redis-py cannot encode (e.g. None); return the rest, packed."""
        kept: list[_Entry] = []
        wire: list[bytes] = []
        for entry in batch:
            try:
                wire.append(self._pack(entry[0]))
            except DataError as exc:
                if not entry[1].done():
                    entry[1].set_exception(StoreUnavailable(f"Redis error: {exc}"))
                continue
            kept.append(entry)
        return kept, wire

    async def _round_trip(self, wire: list[bytes]) -> list[Any]:
        """Write ``wire`` to a pooled connection and read one reply per command (error replies as exceptions).

        The connection's retry policy applies to the whole round trip, as for redis-py's ``Pipeline``.
        """
        pool = self._pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return await conn.retry.call_with_retry(
                lambda: self._exchange(conn, wire),
                lambda error, failures: conn.disconnect(error=error, failure_count=failures),
                with_failure_count=True,
            )
        except BaseException:
            # Not retried (a protocol error, cancellation, retries exhausted): never pool a half-read connection.
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)

    @staticmethod
    async def _exchange(conn: AbstractConnection, wire: list[bytes]) -> list[Any]:
        # One deadline for the batch instead of a timeout per reply: while this task holds the connection its
        # per-operation ``socket_timeout`` is off (``read_response(timeout=math.inf)`` would turn a socket-level
        # TimeoutError into a ``None`` reply), so errors still disconnect it and raise.
        timeout = conn.socket_timeout
        replies: list[Any] = []
        append, read = replies.append, conn.read_response
        conn.socket_timeout = None
        try:
            async with asyncio.timeout(timeout):
                await conn.send_packed_command(wire)
                for _ in range(len(wire)):
                    try:
                        append(await read())
                    except ResponseError as exc:
                        append(exc)
        except TimeoutError:
            # The operation cut short by the deadline has disconnected the connection already.
            raise RedisTimeoutError(f"Timeout after {timeout} s waiting for {len(wire)} replies") from None
        finally:
            if conn.socket_timeout is None:  # unless redis-py changed it meanwhile (maintenance notifications)
                conn.socket_timeout = timeout
        return replies


class RedisStore:
    def __init__(self, url: str, namespace: str = "gw", *, timeout: float = 2.0) -> None:
        self.namespace = namespace
        self._client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            max_connections=64,
        )
        self._pipe = _AutoPipeline(self._client)

    def _k(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _run(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command on the auto-pipeline; await the returned future (no Task per command)."""
        return self._pipe.execute(*args)

    def _eval(self, script: _Script, *args: Any) -> asyncio.Future[Any]:
        """Queue a script (``args``: numkeys, keys, arguments) on the auto-pipeline, as ``EVALSHA``."""
        return self._pipe.evalsha(script, *args)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), 2.0))
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self._pipe.drain()
        await self._client.aclose()

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        # SET NX GET returns the old value when it exists (Redis >= 7), in one round trip.
        old = await self._run("SET", self._k(key), value, "PX", int(ttl * 1000), "NX", "GET")
        return None if old is None else str(old)

    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        if ttl is None:
            await self._run("SET", self._k(key), value)
        else:
            await self._run("SET", self._k(key), value, "PX", int(ttl * 1000))

    def put_soon(self, key: str, value: str, ttl: float) -> asyncio.Future[Any]:
        return self._pipe.execute_soon("SET", self._k(key), value, "PX", int(ttl * 1000))

    async def get(self, key: str) -> str | None:
        return await self.lookup(key)

    def lookup(self, key: str) -> asyncio.Future[str | None]:
        return self._run("GET", self._k(key))  # replies are str (decode_responses) or None

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._run("DEL", *(self._k(k) for k in keys))

    async def expire(self, key: str, ttl: float) -> None:
        await self._run("PEXPIRE", self._k(key), max(1, int(ttl * 1000)))

    async def push(
        self,
        key: str,
        items: Sequence[str],
        keep: int,
        *,
        markers: Sequence[str] = (),
        marker_ttl: float = 0,
        ttl: float | None = None,
    ) -> None:
        if not items and not markers:
            return
        keys = [self._k(key), *(self._k(m) for m in markers)]
        marker_ms = max(1, int(marker_ttl * 1000))
        list_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        await self._eval(_PUSH, len(keys), *keys, keep, marker_ms, list_ms, len(items), *items)

    async def tail(self, key: str, n: int) -> list[str]:
        if n <= 0:
            return []
        return list(await self._run("LRANGE", self._k(key), -n, -1))

    async def length(self, key: str) -> int:
        return int(await self._run("LLEN", self._k(key)))

    async def hput(self, key: str, field: str, value: str, ttl: float | None = None) -> None:
        k = self._k(key)
        written = self._run("HSET", k, field, value)
        if ttl is None:
            await written
            return
        expiry = self._run("PEXPIRE", k, max(1, int(ttl * 1000)))  # same batch: one round trip
        await asyncio.gather(written, expiry)

    async def hget(self, key: str, field: str) -> str | None:
        value = await self._run("HGET", self._k(key), field)
        return None if value is None else str(value)

    async def hmget(self, key: str, fields: Sequence[str]) -> list[str | None]:
        if not fields:
            return []
        values = await self._run("HMGET", self._k(key), *fields)
        return [None if v is None else str(v) for v in values]

    async def hclaim(self, key: str, field: str, value: str) -> str | None:
        k = self._k(key)
        # Same batch, in order on one connection: the HGET sees this HSETNX's value or the one it lost to.
        claimed, current = await asyncio.gather(self._run("HSETNX", k, field, value), self._run("HGET", k, field))
        return None if claimed else (None if current is None else str(current))

    async def hall(self, key: str) -> dict[str, str]:
        raw = await self._run("HGETALL", self._k(key))
        if isinstance(raw, dict):
            return {str(k): str(v) for k, v in raw.items()}
        it = iter(raw)
        return {str(k): str(v) for k, v in zip(it, it, strict=True)}

    async def hdel(self, key: str, field: str) -> bool:
        return bool(await self._run("HDEL", self._k(key), field))

    async def hincr(self, key: str, increments: Mapping[str, int], ttl: float | None = None) -> dict[str, int]:
        if not increments:
            return {}
        ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        pairs = [x for field, by in increments.items() for x in (field, int(by))]
        values = await self._eval(_HINCR, 1, self._k(key), ttl_ms, *pairs)  # one command for every field
        return {field: int(v) for field, v in zip(increments, values, strict=True)}

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._eval(_ACQUIRE, 1, self._k(key), owner, int(ttl * 1000)))

    async def renew_leases(self, keys: Sequence[str], owner: str, ttl: float) -> list[bool]:
        results = await asyncio.gather(*(self._eval(_RENEW, 1, self._k(k), owner, int(ttl * 1000)) for k in keys))
        return [bool(r) for r in results]

    async def release_lease(self, key: str, owner: str) -> bool:
        return bool(await self._eval(_RELEASE, 1, self._k(key), owner))

    async def lease_owners(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return list(await self._run("MGET", *(self._k(k) for k in keys)))

    async def heartbeat(self, group: str, member: str, ttl: float) -> None:
        await self._run("ZADD", self._k(f"members:{group}"), time.time() + ttl, member)

    async def leave(self, group: str, member: str) -> None:
        await self._run("ZREM", self._k(f"members:{group}"), member)

    async def members(self, group: str) -> list[str]:
        k = self._k(f"members:{group}")
        await self._run("ZREMRANGEBYSCORE", k, "-inf", time.time())
        return sorted(str(m) for m in await self._run("ZRANGE", k, 0, -1))

    async def reserve_token(self, key: str, rate: float, burst: float) -> float:
        return float(await self._eval(_BUCKET, 1, self._k(f"bucket:{key}"), rate, burst))
