"""Loading user code by import path: agents and out-of-tree platforms."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from gateway.core.errors import ConfigError


def import_path(path: str, what: str) -> Any:
    """Import ``package.module:attr`` with the working directory importable (as uvicorn does)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what}: {path!r} is not an import path like 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{what}: cannot import module {module_name!r}: {exc!r}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{what}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
