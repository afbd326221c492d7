"""Prometheus metrics, one registry per process (tests build several apps)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_TURN = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # Ingress.
        self.requests = Counter(
            "gateway_requests", "Webhook requests by connector and outcome", ["connector", "outcome"], registry=r
        )
        self.publish_seconds = Histogram(
            "gateway_publish_seconds", "Confirmed publish latency", ["exchange"], buckets=_LATENCY, registry=r
        )
        self.dedupe_hits = Counter("gateway_dedupe_hits", "Deliveries already accepted once", ["connector"], registry=r)
        # Dispatch.
        self.turns = Counter("gateway_turns", "Agent turns by agent and outcome", ["agent", "outcome"], registry=r)
        self.turn_seconds = Histogram(
            "gateway_turn_seconds", "Agent turn duration", ["agent"], buckets=_TURN, registry=r
        )
        self.queue_lag = Histogram(
            "gateway_queue_lag_seconds", "From acceptance to the start of its turn", buckets=_TURN, registry=r
        )
        self.in_flight = Gauge(
            "gateway_deliveries_in_flight", "Deliveries taken and not yet settled", ["queue"], registry=r
        )
        self.skipped = Counter("gateway_events_skipped", "Events that start no turn", ["reason"], registry=r)
        self.partitions_owned = Gauge("gateway_partitions_owned", "Partitions this consumer holds", registry=r)
        # Models (consumers/usage.py).
        self.model_tokens = Counter(
            "gateway_model_tokens", "Model tokens of succeeded turns", ["agent", "route", "direction"], registry=r
        )
        self.budget_exhausted = Counter(
            "gateway_budget_exhausted", "Turns ended by a spent token budget", ["agent", "route"], registry=r
        )
        # Outbound.
        self.sent = Counter("gateway_outbound_sent", "Platform calls made", ["platform", "action"], registry=r)
        self.send_seconds = Histogram(
            "gateway_outbound_seconds", "Platform call latency", ["platform"], buckets=_LATENCY, registry=r
        )
        self.rate_limited = Counter(
            "gateway_outbound_rate_limited", "429 answers from platforms", ["platform"], registry=r
        )
        self.send_retries = Counter("gateway_outbound_retries", "Outbound retries", ["platform"], registry=r)
        self.reply_publish_retries = Counter(
            "gateway_reply_publish_retries",
            "A turn's reply published again after RabbitMQ did not confirm it (the agent does not run again)",
            registry=r,
        )
        self.outbound_duplicates = Counter(
            "gateway_outbound_duplicates_suppressed", "Outbound messages already sent once", ["platform"], registry=r
        )
        # Dead letters.
        self.dead_letters = Counter("gateway_dead_letters", "Messages dead-lettered", ["stage"], registry=r)

        # Children of the hot-path metrics, resolved once per label set (``labels()`` takes a lock and
        # builds a tuple on every call); the label sets are few (connectors x outcomes, exchanges).
        self._request_children: dict[tuple[str, str], Any] = {}
        self._publish_children: dict[str, Any] = {}

    def count_request(self, connector: str, outcome: str) -> None:
        child = self._request_children.get((connector, outcome))
        if child is None:
            child = self._request_children[(connector, outcome)] = self.requests.labels(connector, outcome)
        child.inc()

    def observe_publish(self, exchange: str, seconds: float) -> None:
        child = self._publish_children.get(exchange)
        if child is None:
            child = self._publish_children[exchange] = self.publish_seconds.labels(exchange)
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
