"""The HTTP edge against slow and broken clients, on a real serve process: a slow or partial request is cut
off, a body that never finishes is a 408, a client that disconnects is no ERROR, and a signed but malformed
payload is a 400 logged at warning without a traceback."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.conftest import SLACK_SECRET, TELEGRAM_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_slow_partial_and_broken_requests_are_cut_off_quietly(
    services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), GATEWAY_HEADER_TIMEOUT="1", GATEWAY_BODY_TIMEOUT="1")
    serve = await GatewayProcess("serve", env).start()
    try:
        # Partial headers, then nothing: the connection is closed by the server (EOF), not held for an hour.
        reader, writer = await raw(serve.port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # Headers complete, the body never finishes: 408.
        head = (
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        reader, writer = await raw(serve.port, head + b'{"type":')
        answer = await asyncio.wait_for(reader.read(200), 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        writer.close()
        # A client that sends half a body and disconnects.
        reader, writer = await raw(serve.port, head + b'{"a":1')
        writer.close()
        await writer.wait_closed()
        # Signed but malformed: a Telegram body that is JSON but not an Update.
        bad = json.dumps({"update_id": "not-a-number", "message": {"chat": 5}}).encode()
        status = await post(f"{serve.url}/telegram/default", bad, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        assert status == 400
        # And the next normal request is served.
        good = b'{"type":"url_verification","challenge":"c1"}'
        assert await post(f"{serve.url}/slack/events", good, slack_headers(SLACK_SECRET, good)) == 200
        await eventually(serve.logs, until=lambda t: "client_disconnected" in t, timeout=10, what="the disconnect")
    finally:
        await serve.terminate()
    lines = [json.loads(line) for line in serve.logs().splitlines() if line.startswith("{")]
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    assert all("exception" not in line for line in lines), "no tracebacks for client mistakes"
