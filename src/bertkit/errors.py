"""The bertkit exception tree.

Every mistake a user can make (a bad config field, a malformed data file, a checkpoint that
does not fit the model) raises a subclass of :class:`BertkitError` whose message names the
field, file or line and what was expected. The CLI turns these into one ``error: …`` line and
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Self


class BertkitError(Exception):
    """Root of every error bertkit raises on purpose."""

    @classmethod
    def unknown(cls, problem: str, names: Iterable[str], listed_as: str = "known") -> Self:
        """An error for a name that is not in a table, listing the names that are, since that
        is the fix: ``unknown artifact 'x'; known artifacts: a, b``."""
        return cls(f"{problem}; {listed_as}: {', '.join(sorted(names))}")


class ConfigError(BertkitError, ValueError):
    """A configuration field holds a value the model cannot use."""


class TokenizerError(BertkitError):
    """A tokenizer could not be built, loaded or applied."""


class DataFormatError(BertkitError):
    """A user's data file does not have the expected format.

    The message starts with ``path:line:`` when both are known, as compilers do, so editors
    and terminals can jump to the spot.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class CheckpointError(BertkitError):
    """A checkpoint is missing, corrupt, unsafe, or does not fit the model."""


class InputError(BertkitError, ValueError):
    """Tensors or texts handed to a model do not fit it (ids out of range, too long, …)."""


class UsageError(BertkitError):
    """A command or function was called in a way that cannot work."""


class ArtifactError(BertkitError):
    """A real checkpoint or data set could not be fetched or failed its checksum."""
