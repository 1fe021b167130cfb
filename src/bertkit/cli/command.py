"""A command is described once, in its handler's docstring, and ``--help`` prints that text.

The docstring's first paragraph, ````bertkit NAME``: SUMMARY``, is the line ``bertkit --help``
lists for the command; the paragraphs after it are the description ``bertkit NAME --help``
shows above the options. The reader of the code and the user of the command see one text, so
the two cannot drift apart. (Under ``python -OO``, which drops docstrings, the commands still
work, without their help texts.)
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def add_command(subcommands: argparse._SubParsersAction, name: str, handler: Handler,
                **options: Any) -> argparse.ArgumentParser:
    """The parser of command ``name``, which runs ``handler``; its help texts come from the
    handler's docstring (``options`` go to ``add_parser`` and override them)."""
    summary, description = help_texts(handler.__doc__)
    parser = subcommands.add_parser(name, **{"help": summary, "description": description,
                                             **options})
    parser.set_defaults(handler=handler)
    return parser


def help_texts(doc: str | None) -> tuple[str | None, str | None]:
    """(summary, description) of a handler's docstring, whitespace collapsed as argparse
    collapses it: the first paragraph less its ````bertkit NAME``: `` lead and final full
    stop, and the rest."""
    if not doc:
        return None, None
    first, _, rest = inspect.cleandoc(doc).partition("\n\n")
    summary = " ".join(first.split())
    if summary.startswith("``"):
        summary = summary.split("``: ", 1)[-1]
    return summary.removesuffix("."), " ".join(rest.split()) or None
