"""The event's wire JSON with the webhook body written in place of ``raw`` reads as the same event."""

from __future__ import annotations

import json

import orjson
import pytest

from connectors.base import parse_json_body
from connectors.slack import parse
from gateway.core.events import Event
from gateway.core.publish import event_json
from tests.unit.builders import fixture_bytes


@pytest.mark.parametrize(
    "name", ["slack_message_channel.json", "slack_message_in_thread.json", "slack_app_mention.json"]
)
def test_spliced_raw_reads_as_the_serialized_event(name: str) -> None:
    body = fixture_bytes(name)
    envelope, strict = parse_json_body(body, platform="slack")
    assert strict
    event = parse.event_from_callback(envelope)
    spliced = event_json(event, body)
    assert orjson.loads(spliced) == orjson.loads(event_json(event))
    assert list(orjson.loads(spliced)) == list(orjson.loads(event_json(event)))  # same field order
    assert Event.model_validate_json(spliced) == Event.model_validate_json(event_json(event))


def test_a_body_only_the_standard_library_reads_is_not_strict() -> None:
    body = b'{"type": "event_callback", "text": "\\ud800", "n": NaN}'  # lone surrogate, NaN
    data, strict = parse_json_body(body, platform="slack")
    assert data["text"] == json.loads(body)["text"]
    assert not strict
