"""One module per CLI command; ``register`` wires them into argparse."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.commands import check, consume, send, serve


def register(sub: argparse._SubParsersAction[Any]) -> None:
    for module in (serve, consume, check, send):
        module.register(sub)
