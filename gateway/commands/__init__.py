"""One module per CLI command (``dlq`` with its parts in ``dlq_*.py``); ``register`` wires them into argparse."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.commands import check, consume, discord, dlq, handoff, history, purge, send, serve, status, tail


def register(sub: argparse._SubParsersAction[Any]) -> None:
    for module in (serve, consume, discord, check, send, tail, dlq, status, purge, history, handoff):
        module.register(sub)
