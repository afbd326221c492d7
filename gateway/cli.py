"""The ``gateway`` command.

gateway dev       ingress + consumers + sender in one process (the embedded default)
gateway serve     HTTP ingress only (needs AMQP_URL and REDIS_URL)
gateway consume   dispatch and outbound workers (needs AMQP_URL and REDIS_URL)
gateway discord   the Discord Gateway connection: messages in (needs DISCORD_BOT_TOKEN)
gateway tail      live view of inbound, outbound and dead letters
gateway dlq       list | show | replay | purge dead letters
gateway send      sign and post a sample event to a running gateway
gateway status    queues, consumers, partitions, dead letters
gateway check     validate configuration and reach the broker and Redis
gateway purge     delete a namespace's queues, exchanges and Redis keys (needs --yes)
gateway history   a conversation's turns: messages, tool calls, replies, usage
gateway handoff   hand a conversation to a person (--release gives it back, --list)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import ValidationError

from gateway.core import logs, tracing
from gateway.core.errors import ConfigError, StoppedWhileConnecting
from gateway.core.settings import Settings

#: Commands that take part in a trace (the others only read or inspect).
TRACED = frozenset({"serve", "consume", "dev", "send", "discord"})
Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    from gateway.commands import register

    parser = argparse.ArgumentParser(
        prog="gateway", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    return parser


SIGPIPE_STATUS = 128 + 13


def silence_stdout() -> None:
    """Point stdout at /dev/null, so nothing written later (or flushed at exit) hits the closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"gateway: invalid environment: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.resolved_log_format, settings.log_level)
    run: Command = args.run
    _install_uvloop()
    try:
        if args.command in TRACED:
            tracing.setup(tracing.mode_from_env(settings.tracing), role=args.command)
        status = asyncio.run(run(settings, args))
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return status
    except BrokenPipeError:
        # `gateway dlq list | head -1`: the reader is gone. Commands give back what they held on the way
        # out (the exception unwinds their context managers); exit like a tool killed by SIGPIPE.
        silence_stdout()
        return SIGPIPE_STATUS
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except StoppedWhileConnecting:
        print("gateway: stopped before the broker answered; nothing was accepted", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    sys.exit(main())
