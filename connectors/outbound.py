"""The outbound side of a connector: one platform call per :class:`OutboundMessage`.

A sender raises :class:`~gateway.core.errors.RateLimited` for 429s (with the
platform's ``Retry-After``/``retry_after``), :class:`~gateway.core.errors.SendError`
with ``retryable=True`` only when the request never left this process
(connection refused, DNS, connect timeout), and ``retryable=False`` for
everything else: a resent post that the platform had already accepted is a
duplicate in the chat.

A sender whose platform can be asked "did this message go out already?" also implements
:class:`FindsSent`: the outbound worker asks it, only for a delivery that may have been sent already (a
redelivery, a replay, a re-run turn) whose ``sent:`` marker is missing, before posting again. Slack looks for
the message carrying the outbound id in its metadata (connectors/slack/lookup.py); Discord needs no lookup
(``enforce_nonce``); Telegram, WhatsApp and Teams have no API to look a sent message up, so a process killed
between the platform's answer and the marker write can still post one of them twice (docs/contract.md).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import aiohttp

from gateway.core.errors import SendError
from gateway.core.events import OutboundMessage

#: The best-effort actions (``gateway.core.events.AMBIENT_ACTIONS``) a sender shows when it does not say:
#: a sender may list its own in an ``ambient`` attribute; the others are dropped before it is called.
DEFAULT_AMBIENT = frozenset({"typing"})

#: aiohttp failures a sender turns into SendError with :func:`transport_error`.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


def transport_error(exc: BaseException, *, platform: str, target: str) -> SendError:
    """The SendError for an HTTP failure: retryable only when the connection was never made."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return SendError(f"cannot connect to {target}: {exc}", platform=platform, retryable=True)
    return SendError(f"call to {target} failed after sending: {exc!r}", platform=platform)


class PlatformSender(Protocol):
    platform: str

    async def send(self, message: OutboundMessage) -> dict[str, Any]:
        """Make the call; return what the platform answered that is worth keeping (ids, ts)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class FindsSent(Protocol):
    """The optional lookup of a sender (see the module's docstring)."""

    async def find_sent(self, message: OutboundMessage) -> dict[str, Any] | None:
        """What the platform shows for ``message`` if it was posted already (kept as its sent marker), else
        None. Raises SendError (RateLimited for a 429) when the platform cannot be asked."""
        ...
