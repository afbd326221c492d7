"""Why the broker refused us, in words an operator can act on.

aiormq and asyncio raise exceptions whose ``str()`` is often empty (a handshake timeout is a bare
``TimeoutError``) or only names a frame (a missing vhost is "got <Connection.Close ...>"). Logs and
``gateway check`` print :func:`describe` instead.
"""

from __future__ import annotations

import aiormq.exceptions

HINT = "check AMQP_URL (host, port, user, password, vhost) and that RabbitMQ is running"


def describe(exc: BaseException) -> str:
    """One line: what went wrong with the broker connection, and what to check."""
    text = str(exc).strip()
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError | aiormq.exceptions.AuthenticationError):
        return f"access refused: the broker rejected the user or password in AMQP_URL ({text or 'ACCESS_REFUSED'})"
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed) or (
        isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in text
    ):
        return (
            "the broker closed the connection while opening the vhost: the vhost in AMQP_URL does not exist "
            "or the user has no permission on it (rabbitmqctl list_vhosts / list_permissions)"
        )
    if isinstance(exc, TimeoutError):
        return (
            "the broker accepted the TCP connection but did not complete the AMQP handshake in time "
            "(wrong port, a TLS port without amqps://, or an overloaded broker)"
        )
    cause = exc.__cause__
    if isinstance(cause, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError):
        return f"connection refused: nothing listens at the host and port of AMQP_URL ({text})"
    if isinstance(exc, OSError | aiormq.exceptions.AMQPConnectionError) and text:
        return f"cannot connect: {text}"
    if isinstance(exc, aiormq.exceptions.AMQPError):
        return f"{type(exc).__name__}: {text or 'the broker closed the connection'}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
