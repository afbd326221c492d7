"""argparse helpers shared by the command modules."""

from __future__ import annotations

import argparse
from typing import Any


def documented_parser(
    sub: argparse._SubParsersAction[Any], name: str, *, help: str, doc: str | None, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows ``doc`` (its module's docstring) with the line breaks as written."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    return parser
