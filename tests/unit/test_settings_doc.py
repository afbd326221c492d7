"""docs/settings.md is the one table of every setting: none missing, none that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.core.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
# Read by others than Settings: the OpenTelemetry SDK, and the test suite.
NOT_SETTINGS = {"CI", "FUZZ_EXAMPLES", "CHROMIUM"}


def env_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        names.add(str(choices[0]))
    return names


def documented() -> set[str]:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_has_a_row() -> None:
    assert len(env_names()) > 40
    assert sorted(env_names() - documented()) == []


def test_every_row_is_a_setting() -> None:
    assert sorted(documented() - env_names() - NOT_SETTINGS) == []
