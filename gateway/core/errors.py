"""Errors of the gateway core.

GatewayError
├── ConfigError            bad settings or gateway.toml; raised at start-up, never per request
├── RequestError           an inbound request we refuse; carries the HTTP status
│   ├── NotFound           404: unknown or disabled connector, bot or source
│   ├── BadSignature       401: missing/wrong signature or secret token
│   ├── StaleTimestamp     401: outside the replay window
│   ├── PayloadTooLarge    413: body over the limit
│   └── MalformedPayload   400: not the JSON or form the platform sends
├── PublishError           the broker did not confirm; the request must not be answered 200
├── StoreUnavailable       Redis (or its twin) did not answer
└── SendError              an outbound platform call failed
    └── RateLimited        429 from the platform; carries ``retry_after`` seconds
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration cannot work; the message says what to fix."""


class RequestError(GatewayError):
    status = 400

    def __init__(self, reason: str, *, platform: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.platform = platform


class NotFound(RequestError):
    status = 404


class BadSignature(RequestError):
    status = 401


class StaleTimestamp(RequestError):
    status = 401


class PayloadTooLarge(RequestError):
    status = 413


class MalformedPayload(RequestError):
    status = 400


class PublishError(GatewayError):
    def __init__(self, reason: str, *, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.event_id = event_id


class StoreUnavailable(GatewayError):
    pass


class SendError(GatewayError):
    """An outbound call failed. ``retryable`` is true only when the request was never sent."""

    def __init__(self, reason: str, *, platform: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.platform = platform
        self.retryable = retryable


class RateLimited(SendError):
    def __init__(self, reason: str, *, platform: str, retry_after: float) -> None:
        super().__init__(reason, platform=platform, retryable=True)
        self.retry_after = retry_after


class StoppedWhileConnecting(Exception):
    """SIGTERM or Ctrl-C arrived while the broker was still unreachable at start-up."""
