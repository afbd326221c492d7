"""The repository stands alone: no file in it points outside it or at one machine's absolute paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A relative path up into the steering folder beside a checkout ("..", a slash, then its name, spelled as a
# character class here so this file does not match itself) and absolute paths of a developer's or CI's machine.
OUTSIDE = re.compile(r"\.\.[/\\]shared|/work/|/root/|/home/[a-z]|/Users/[A-Za-z]|C:\\\\Users")


# Folders a checkout grows when it is used (virtual environments, caches) and never ships.
NOT_SHIPPED = {".git", ".venv", "venv", "node_modules", "build", "dist", "__pycache__"}


def _listed_names() -> list[str]:
    """The repository's files: git's list in a checkout, else (a copy such as .ci/run makes) a walk of the tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listed.returncode == 0 and (REPO / ".git").exists():
        return [name for name in listed.stdout.split("\n") if name]
    return [
        str(path.relative_to(REPO))
        for path in REPO.rglob("*")
        if path.is_file()
        and not any(
            part in NOT_SHIPPED or part.endswith((".egg-info", "_cache")) for part in path.relative_to(REPO).parts[:-1]
        )
    ]


def tracked_text_files() -> list[Path]:
    files = []
    for name in _listed_names():
        path = REPO / name
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def test_no_file_refers_outside_the_repository() -> None:
    files = tracked_text_files()
    assert len(files) > 100, "found too few files: is this the repository?"
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in files
        if path.name != "test_standalone.py"
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_fixtures_live_in_the_repository_with_their_provenance() -> None:
    fixtures = REPO / "tests" / "fixtures"
    readme = (fixtures / "README.md").read_text()
    names = sorted(p.name for p in fixtures.iterdir() if p.name != "README.md")
    assert names, "tests/fixtures is empty"
    assert [n for n in names if n not in readme] == []


def test_license_matches_pyproject() -> None:
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text()
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]
    assert "Version 2.0" in (REPO / "LICENSE").read_text()[:200]
