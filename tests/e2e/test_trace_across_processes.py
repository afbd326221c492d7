"""OpenTelemetry: one webhook is one trace across `gateway serve` and `gateway consume`.

Both processes run with GATEWAY_TRACING=console (spans as JSON on stdout, flushed every 50 ms)
against the real RabbitMQ and Redis; the trace context can only get from one process to the
other through the AMQP message headers.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.core import samples
from tests.e2e.conftest import SLACK_SECRET, gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess, post
from tests.support.services import service_env
from tests.support.signing import slack_headers
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
_SPAN_START = re.compile(r'^\{\n\s+"name": ', re.MULTILINE)


def spans_in(text: str) -> list[dict[str, Any]]:
    """The ConsoleSpanExporter objects in a log that also holds JSON log lines."""
    decoder = json.JSONDecoder()
    out = []
    for m in _SPAN_START.finditer(text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue  # the tail of a span still being written
        out.append(obj)
    return out


@pytest.fixture
async def traced(
    slack: FakeSlack, telegram: FakeTelegram, services: tuple[str, str, str]
) -> AsyncIterator[list[GatewayProcess]]:
    env = gateway_env(
        slack,
        telegram,
        **service_env(services),
        GATEWAY_TRACING="console",
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_SERVICE_NAME="gw-test",
    )
    procs = [await GatewayProcess("serve", env).start(), await GatewayProcess("consume", env).start()]
    try:
        yield procs
    finally:
        codes = [await p.terminate() for p in procs]  # every process stops before any assertion
        assert codes == [0, 0], "\n".join(p.logs()[-2000:] for p in procs)


async def test_one_webhook_is_one_trace_from_request_to_platform_call(
    traced: list[GatewayProcess], slack: FakeSlack
) -> None:
    serve, consume = traced
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    body = samples.slack_message("trace me", channel="C7", ts="1700000000.000700")
    headers = {**slack_headers(SLACK_SECRET, body), "traceparent": f"00-{trace_id}-{caller_span}-01"}
    assert await post(f"{serve.url}/slack/events", body, headers) == 200
    assert [m["text"] for m in await slack.wait_for_messages(1)] == ["echo: trace me"]

    def ours(proc: GatewayProcess) -> list[dict[str, Any]]:
        return [s for s in spans_in(proc.logs()) if s["context"]["trace_id"] == "0x" + trace_id]

    served = await eventually(lambda: ours(serve), until=lambda s: len(s) >= 3, what="serve's spans")
    consumed = await eventually(lambda: ours(consume), until=lambda s: len(s) >= 3, what="consume's spans")
    by_name = {s["name"]: s for s in served + consumed}
    events_exchange = next(n for n in by_name if n.startswith("publish ") and n.endswith(".events"))
    outbound_exchange = next(n for n in by_name if n.startswith("publish ") and n.endswith(".outbound"))
    chain = ["POST /slack/{endpoint}", "accept", events_exchange, "turn echo", outbound_exchange, "send slack reply"]
    assert set(chain) <= set(by_name), sorted(by_name)

    # Each span is the child of the one before it; the first continues the caller's span.
    parent = "0x" + caller_span
    for name in chain:
        assert by_name[name]["parent_id"] == parent, (name, by_name[name]["parent_id"], parent)
        parent = by_name[name]["context"]["span_id"]

    assert {s["name"] for s in served} >= {"POST /slack/{endpoint}", "accept", events_exchange}
    assert {s["name"] for s in consumed} >= {"turn echo", outbound_exchange, "send slack reply"}
    assert by_name["POST /slack/{endpoint}"]["kind"] == "SpanKind.SERVER"
    assert by_name["POST /slack/{endpoint}"]["attributes"]["http.response.status_code"] == 200
    assert by_name["turn echo"]["kind"] == "SpanKind.CONSUMER"
    assert by_name["turn echo"]["attributes"]["gateway.replies"] == 1
    assert by_name["send slack reply"]["status"]["status_code"] == "UNSET"
    assert by_name["turn echo"]["resource"]["attributes"]["service.name"] == "gw-test"
    assert by_name["turn echo"]["resource"]["attributes"]["gateway.role"] == "consume"

    # The consumer's log lines for this turn carry the trace id, so logs and traces join.
    turn_lines = [
        json.loads(line)
        for line in consume.logs().splitlines()
        if line.startswith("{") and '"turn_done"' in line and trace_id in line
    ]
    assert len(turn_lines) == 1
    assert turn_lines[0]["span_id"] == by_name["turn echo"]["context"]["span_id"].removeprefix("0x")
