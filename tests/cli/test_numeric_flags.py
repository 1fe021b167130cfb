"""Every numeric flag of every command refuses zero / negative / huge / non-finite values
where they make no sense, at argument parsing: exit status 2 and one argparse line naming the
flag and the value, before any file is read.

The flags are found by walking the real parser, so a flag added later without a range (a bare
``type=int``) fails the first test.
"""

from __future__ import annotations

import argparse

import pytest

from bertkit.cli import build_parser

NEGATIVE_ALLOWED = {"--layer"}  # an index: -1 is the last layer
# Checked by the command itself with its own one-line error (exit status 2, nothing written),
# which tests/demo/test_demo.py pins.
CHECKED_BY_THE_COMMAND = {("prune", "--fraction")}  # own one-line errors
MUST_BE_POSITIVE = ("batch-size", "top-k", "max-steps", "threads", "num-beams", "grad-accum",
                    "max-length", "vocab-size", "max-new-tokens", "seq-len", "epochs", "lr",
                    "minutes", "max-texts", "max-queue", "temperature")


def numeric_flags() -> list[tuple[tuple[str, ...], argparse.Action]]:
    """``(subcommand path, action)`` for every option whose value is a number."""
    found = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif action.option_strings and _is_numeric(action):
                found.append((path, action))

    walk(PARSER, ())
    return found


def _is_numeric(action: argparse.Action) -> bool:
    if action.type in (int, float):
        return True
    try:
        return action.type is not None and isinstance(action.type("1"), int | float)
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False


PARSER = build_parser()  # parse_args leaves it unchanged: one for every case
FLAGS = numeric_flags()


def test_every_numeric_flag_declares_its_range():
    assert len(FLAGS) >= 80  # the walk found the commands' flags
    bare = [f"{' '.join(p)} {a.option_strings[0]}" for p, a in FLAGS
            if a.type in (int, float) and (*p, a.option_strings[0]) not in CHECKED_BY_THE_COMMAND]
    assert not bare, f"numeric flags without a range: {bare}"


def parse_error(path, flag, value, capsys) -> str | None:
    """The argparse error line for ``flag value``, or None when the value is accepted (the
    parse then fails only on the command's other required arguments, or not at all)."""
    try:
        PARSER.parse_args([*path, f"{flag}={value}"])
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if f"argument {flag}" in line]
    return lines[0] if lines else None


RANGED = [(p, a) for p, a in FLAGS if (*p, a.option_strings[0]) not in CHECKED_BY_THE_COMMAND]


@pytest.mark.parametrize(("path", "action"), RANGED,
                         ids=[f"{'-'.join(p)}{a.option_strings[0]}" for p, a in RANGED])
def test_zero_negative_huge_and_non_finite(path, action, capsys):
    flag = action.option_strings[0]
    is_int = _accepts_only_integers(action)
    bad = ["-3", "1000000000000"] if is_int else ["-3", "nan", "inf"]
    if flag in NEGATIVE_ALLOWED:
        bad.remove("-3")
    if any(name in flag for name in MUST_BE_POSITIVE):
        bad.append("0")
    for value in bad:
        line = parse_error(path, flag, value, capsys)
        assert line is not None, f"{' '.join(path)} {flag}={value} was accepted"
        assert f"'{value}'" in line and "expected" in line, line
    assert parse_error(path, flag, str(action.default or 1), capsys) is None  # the default


def _accepts_only_integers(action: argparse.Action) -> bool:
    try:
        action.type("1.5")
    except (argparse.ArgumentTypeError, ValueError):
        return True
    return False
