"""Every command's and subcommand's --help says what it does."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli import _parser, main

Command = tuple[tuple[str, ...], str, str]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """(path, one-line help in the parent's list, description) of every subcommand, depth first."""
    out: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                out.append(((*path, name), helps.get(name, ""), child.description or ""))
                out += commands(child, (*path, name))
    return out


ALL = commands(_parser())


def test_the_walk_finds_every_command() -> None:
    paths = {path for path, _, _ in ALL}
    verbs = ("dev", "serve", "consume", "discord", "tail", "dlq", "send", "status", "check", "purge")
    assert {(c,) for c in verbs} <= paths
    assert {("dlq", a) for a in ("list", "show", "replay", "purge")} <= paths
    assert {("send", p) for p in ("slack", "telegram", "webhook", "discord")} <= paths


@pytest.mark.parametrize(("path", "summary", "description"), ALL, ids=[" ".join(p) for p, _, _ in ALL])
def test_help_describes_the_command(
    path: tuple[str, ...], summary: str, description: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"gateway {' '.join(path)}"
    assert summary.strip(), f"`{name}` has no one-line help in its parent's list"
    assert len(description.split()) >= 8, f"`{name} --help` does not say what it does: {description!r}"
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert " ".join(description.split()[:6]) in shown
