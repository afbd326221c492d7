"""Shared machinery for the fake platform API servers.

Every fake is an aiohttp app bound to 127.0.0.1 on an OS-assigned port. It records each
request as a :class:`Call`, lets tests wait for calls on an :class:`asyncio.Condition`
(no sleeps), and supports failure injection (rate limit, HTTP failure, delay) that the
concrete fakes render in their platform's real wire format.

Control endpoints, present on every fake so a test in another process can drive it:

* ``GET /_calls``  -> ``{"calls": [{"method", "args", "headers", "at", "status"}, ...]}``
* ``POST /_inject`` with ``{"kind": "rate_limit"|"fail"|"delay", "n": 1, "retry_after": 1,
  "status": 500, "seconds": 0.5, "method": null}``
* ``POST /_reset`` forgets recorded calls and pending injections.
* ``GET /_timeline`` (chat fakes) -> every visible change of text, with its ``at``.

A call is recorded (and waiters woken) once its answer is decided, before an injected delay, so
``wait_for_calls`` also sees calls whose answer is being held back. ``Call.at`` is
``time.monotonic()`` of the serving process: compare it only between calls of the same fake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

__all__ = [
    "Call",
    "ChatFake",
    "FakeServer",
    "Injection",
    "InjectionKind",
    "Shown",
    "json_response",
    "read_request_args",
    "run_cli",
    "run_token_cli",
]

InjectionKind = Literal["rate_limit", "fail", "delay"]


@dataclass(frozen=True)
class Call:
    """One request received by a fake.

    ``status`` is the HTTP status the fake answered with (429 for an injected rate limit, ...),
    so tests can tell accepted calls from rejected attempts.
    """

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Call:
        return cls(
            method=str(data["method"]),
            args=dict(data.get("args") or {}),
            headers=dict(data.get("headers") or {}),
            at=float(data.get("at", 0.0)),
            status=int(data.get("status", 200)),
        )


@dataclass
class Injection:
    """A pending failure: applies to the next ``remaining`` calls matching ``method``."""

    kind: InjectionKind
    remaining: int = 1
    method: str | None = None
    retry_after: int = 1
    status: int = 500
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.method is None or self.method == method)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


class FakeServer:
    """Base class: an aiohttp server with call recording, waiting and failure injection.

    Subclasses implement :meth:`add_routes` and, to speak their platform's format,
    :meth:`rate_limit_response` and :meth:`failure_response`. Request handlers call
    :meth:`handle` with the logical method name, the parsed args and a callable producing
    the normal answer; :meth:`handle` applies injections and records the call.
    """

    #: Name printed in the READY line and used in error messages.
    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._cond: asyncio.Condition | None = None
        self._injections: list[Injection] = []
        self.calls: list[Call] = []

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL to hand to the real client; subclasses may add a path."""
        return self.root_url

    async def start(self) -> Self:
        if self._runner is not None:
            return self
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        self.add_control_routes(app)
        self.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.before_stop()
            await runner.cleanup()

    async def before_stop(self) -> None:
        """Hook: wake long-polling handlers so shutdown is quick."""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/_calls", self._get_calls)
        app.router.add_post("/_inject", self._post_inject)
        app.router.add_post("/_reset", self._post_reset)

    # ------------------------------------------------------------------ to override
    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def rate_limit_response(self, method: str, retry_after: int) -> web.StreamResponse:
        return json_response(
            {"error": "rate_limited", "retry_after": retry_after},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def failure_response(self, method: str, status: int) -> web.StreamResponse:
        return json_response({"error": "injected failure", "status": status}, status=status)

    # ------------------------------------------------------------------ failure injection
    def rate_limit_next(self, n: int = 1, retry_after: int = 1, method: str | None = None) -> None:
        """Answer the next ``n`` calls (of ``method``, or any) with the platform's 429."""
        self._injections.append(Injection("rate_limit", n, method, retry_after=retry_after))

    def fail_next(self, n: int = 1, status: int = 500, method: str | None = None) -> None:
        """Answer the next ``n`` calls (of ``method``, or any) with HTTP ``status``."""
        self._injections.append(Injection("fail", n, method, status=status))

    def delay_next(self, seconds: float, n: int = 1, method: str | None = None) -> None:
        """Hold the answer to the next ``n`` calls for ``seconds`` (to provoke client timeouts)."""
        self._injections.append(Injection("delay", n, method, seconds=seconds))

    def inject(self, spec: dict[str, Any]) -> None:
        """Apply an injection described as in ``POST /_inject``."""
        kind = spec.get("kind")
        n = int(spec.get("n", 1))
        method = spec.get("method")
        if method is not None:
            method = str(method)
        if kind == "rate_limit":
            self.rate_limit_next(n, int(spec.get("retry_after", 1)), method)
        elif kind == "fail":
            self.fail_next(n, int(spec.get("status", 500)), method)
        elif kind == "delay":
            self.delay_next(float(spec.get("seconds", 1.0)), n, method)
        else:
            raise ValueError(f"unknown injection kind {kind!r}")

    def reset(self) -> None:
        self.calls.clear()
        self._injections.clear()

    def _take_injections(self, method: str) -> tuple[Injection | None, float]:
        """Consume at most one failure injection and any delay injection for this call."""
        failure: Injection | None = None
        delay = 0.0
        for inj in self._injections:
            if not inj.matches(method):
                continue
            if inj.kind == "delay":
                if delay == 0.0:
                    delay = inj.seconds
                    inj.remaining -= 1
            elif failure is None:
                failure = inj
                inj.remaining -= 1
        self._injections = [i for i in self._injections if i.remaining > 0]
        return failure, delay

    # ------------------------------------------------------------------ request handling
    async def handle(
        self,
        request: web.Request,
        method: str,
        args: dict[str, Any],
        respond: Callable[[], web.StreamResponse | Awaitable[web.StreamResponse]],
        *,
        check_auth: Callable[[], web.StreamResponse | None] | None = None,
        on_record: Callable[[Call], None] | None = None,
    ) -> web.StreamResponse:
        """Apply injections, authenticate, produce the answer, record the call, return it."""
        failure, delay = self._take_injections(method)
        response: web.StreamResponse | None = None
        if failure is not None:
            if failure.kind == "rate_limit":
                response = self.rate_limit_response(method, failure.retry_after)
            else:
                response = self.failure_response(method, failure.status)
        if response is None and check_auth is not None:
            response = check_auth()
        if response is None:
            try:
                produced = respond()
                response = produced if isinstance(produced, web.StreamResponse) else await produced
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug in a scripted handler: make it visible
                response = json_response({"error": f"fake {self.name} handler raised {exc!r}"}, status=500)
        await self.record(method, args, dict(request.headers), response.status, on_record)
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    async def record(
        self,
        method: str,
        args: dict[str, Any],
        headers: dict[str, str],
        status: int = 200,
        on_record: Callable[[Call], None] | None = None,
    ) -> Call:
        call = Call(method=method, args=args, headers=headers, at=time.monotonic(), status=status)
        self.calls.append(call)
        if on_record is not None:
            on_record(call)
        await self.notify()
        return call

    async def notify(self) -> None:
        if self._cond is None:
            return
        async with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ waiting
    def calls_for(self, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if method is None or c.method == method]

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,
        describe: str = "condition",
    ) -> None:
        """Wait (woken by every recorded call) until ``predicate()`` holds."""
        if predicate():
            return
        if self._cond is None:
            raise RuntimeError(f"{self.name} is not started")
        cond = self._cond
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    await cond.wait_for(predicate)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: timed out after {timeout}s waiting for {describe}; "
                f"received {len(self.calls)} call(s): {self._summary()}"
            ) from None

    async def wait_for_calls(self, n: int, method: str | None = None, timeout: float = 10.0) -> list[Call]:
        """Wait until at least ``n`` calls (of ``method``, or any) were recorded; return them."""
        what = f"{n} call(s)" + (f" of {method!r}" if method else "")
        await self.wait_until(lambda: len(self.calls_for(method)) >= n, timeout, what)
        return self.calls_for(method)

    def _summary(self, limit: int = 20) -> str:
        items = [f"{c.method}[{c.status}] {_short(c.args)}" for c in self.calls[-limit:]]
        return "[" + "; ".join(items) + "]"

    # ------------------------------------------------------------------ control endpoints
    async def _get_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        return json_response({"calls": [c.to_json() for c in self.calls_for(method)]})

    async def _post_inject(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("body must be a JSON object")
            self.inject(spec)
        except (ValueError, TypeError) as exc:
            return json_response({"ok": False, "error": str(exc)}, status=400)
        return json_response({"ok": True, "pending": [asdict(i) for i in self._injections]})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"ok": True})


@dataclass(frozen=True)
class Shown:
    """What a user could see at ``at`` (``time.monotonic()``): ``message`` in ``chat`` showed ``text``.

    ``message`` is the platform's id (Slack ``ts``, Telegram ``message_id``; ``draft:N`` for a Telegram
    draft, which is not a message); ``final`` is False while a stream or draft is still open on it."""

    at: float
    chat: str
    message: str
    text: str
    final: bool = True


class ChatFake(FakeServer):
    """Base class of the chat platforms' fakes: also keeps the messages and reactions it accepted.

    A subclass appends the (decoded) arguments of each message post it accepts to ``_messages``
    and of each reaction to ``_reactions``; rejected attempts are not kept. :meth:`reset` forgets them.
    Every change of visible text (a post, an edit, a streamed append, a draft) is in ``timeline``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._messages: list[dict[str, Any]] = []
        self._reactions: list[dict[str, Any]] = []
        self.timeline: list[Shown] = []

    def show(self, chat: Any, message: Any, text: str, *, final: bool = True) -> None:
        self.timeline.append(Shown(time.monotonic(), str(chat), str(message), text, final))

    def screen(self, chat: Any) -> dict[str, str]:
        """What each message of ``chat`` shows now (drafts included), in the order they appeared."""
        out: dict[str, str] = {}
        for s in self.timeline:
            if s.chat == str(chat):
                out[s.message] = s.text
        return out

    def add_control_routes(self, app: web.Application) -> None:
        super().add_control_routes(app)
        app.router.add_get("/_timeline", self._get_timeline)

    async def _get_timeline(self, request: web.Request) -> web.Response:
        """``GET /_timeline`` -> ``{"timeline": [{"at", "chat", "message", "text", "final"}, ...]}``."""
        return json_response({"timeline": [asdict(s) for s in self.timeline]})

    def steps(self, chat: Any, message: Any) -> list[Shown]:
        """Every text ``message`` of ``chat`` showed, in order."""
        return [s for s in self.timeline if s.chat == str(chat) and s.message == str(message)]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Arguments of every *accepted* message post (rejected attempts are excluded)."""
        return list(self._messages)

    @property
    def reactions(self) -> list[dict[str, Any]]:
        """Arguments of every accepted reaction."""
        return list(self._reactions)

    async def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages were accepted; return all of them."""
        await self.wait_until(lambda: len(self._messages) >= n, timeout, f"{n} accepted message(s)")
        return self.messages

    def reset(self) -> None:
        super().reset()
        self._messages.clear()
        self._reactions.clear()
        self.timeline.clear()


async def read_request_args(
    request: web.Request, decode: Callable[[str, str], Any] = lambda key, value: value
) -> dict[str, Any]:
    """Merge query-string, form (urlencoded/multipart) and JSON-object body arguments.

    String values from the query/form go through ``decode(key, value)``; uploaded files become
    ``{"filename", "content_type", "size"}``.
    """
    args: dict[str, Any] = {k: decode(k, v) for k, v in request.query.items()}
    if not request.body_exists:
        return args
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                args[key] = decode(key, value)
            elif isinstance(value, bytes | bytearray):
                args[key] = {"filename": None, "content_type": None, "size": len(value)}
            else:  # an uploaded file
                size = len(value.file.read())
                value.file.seek(0)
                args[key] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "size": size,
                }
    return args


def _short(args: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(args, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------- standalone process
def run_cli(
    factory: Callable[[argparse.Namespace], FakeServer],
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run a fake until SIGTERM/SIGINT; print ``READY <base_url>`` once listening."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    if configure is not None:
        configure(parser)
    ns = parser.parse_args(argv)

    async def _serve() -> None:
        fake = factory(ns)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with fake:
            sys.stdout.write(f"READY {fake.base_url}\n")
            sys.stdout.flush()
            await stop.wait()

    asyncio.run(_serve())
    return 0


def run_token_cli(factory: Callable[..., FakeServer], default_token: str, argv: Sequence[str] | None = None) -> int:
    """:func:`run_cli` for a fake made as ``factory(token=..., host=..., port=...)``, with a ``--token`` option."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--token", default=default_token)

    return run_cli(lambda ns: factory(token=ns.token, host=ns.host, port=ns.port), configure, argv)
