"""The outbound side of a connector: one platform call per :class:`OutboundMessage`.

A sender raises :class:`~gateway.core.errors.RateLimited` for 429s (with the
platform's ``Retry-After``/``retry_after``), :class:`~gateway.core.errors.SendError`
with ``retryable=True`` only when the request never left this process
(connection refused, DNS, connect timeout), and ``retryable=False`` for
everything else: a resent post that the platform had already accepted is a
duplicate in the chat.
"""

from __future__ import annotations

from typing import Any, Protocol

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
