"""Atomic writes and located reads.

Every file bertkit writes goes to a temporary sibling first and is moved into place with
``os.replace``, which is atomic on POSIX and Windows: an interrupted save leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from bertkit.errors import DataFormatError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file owner-only (0600); give it the permissions a plain open() would.
    tmp.chmod(0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[IO[Any]], None], *,
                 binary: bool = False) -> None:
    """Call ``write(file)`` on a temporary file, flush it to disk, then move it onto ``path``."""
    with atomic_path(path) as tmp:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    atomic_write(path, lambda handle: handle.write(text))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def json_ready(value: Any) -> Any:
    """A JSON-safe copy of nested settings or results: paths become strings, tuples lists, and
    non-finite floats strings (``json`` would write the non-standard ``NaN``)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file raises a :class:`DataFormatError`
    naming the path (and line, for a syntax error)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError("file not found", path) from None
    except IsADirectoryError:
        raise DataFormatError("is a directory; expected a JSON file", path) from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON: {err.msg} (column {err.colno})", path,
                              err.lineno) from None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
