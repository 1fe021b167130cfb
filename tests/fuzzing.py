"""Seeded mutations of valid files, and the rule every reader must keep under them.

A case is one mutated file handed to one reader. It ends in one of three ways:

* ``error``: a :class:`~bertkit.errors.BertkitError` whose message names the file (its path or
  its name), as the CLI prints it;
* ``accepted``: the reader returned (a byte flip inside a word still makes a valid file);
* ``crash``: anything else (a traceback from inside Python, PyTorch or a parser) — a bug.

Mutations that leave no valid reading (invalid UTF-8, an empty file, a directory in the file's
place, a wrong type or a missing field in a structured file) are ``must_fail``: for them
``accepted`` is a silent success with wrong data and counts as a failure too.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bertkit.errors import BertkitError

Mutation = Callable[[bytes, random.Random], bytes]


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes | None  # None: a directory stands where the file should be
    must_fail: bool


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, max(2, len(data)))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]) + data[at:]


def huge_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    at = rng.randrange(len(lines))
    lines[at] = lines[at] + b"x" * 1_000_000
    return b"\n".join(lines)


def byte_cases(valid: bytes, rng: random.Random, count: int) -> Iterator[Case]:
    """The format-free mutations: ``count`` truncations/flips/huge lines, plus the fixed ones."""
    yield Case("empty", b"", True)
    yield Case("directory", None, True)
    yield Case("only whitespace", b" \n\n\t\n", True)
    for n in range(2):
        yield Case(f"invalid utf-8 #{n}", invalid_utf8(valid, rng), True)
    for n in range(count):
        kind = rng.choice(["truncate", "flip", "huge line"])
        mutate = {"truncate": truncate, "flip": flip_bytes, "huge line": huge_line}[kind]
        yield Case(f"{kind} #{n}", mutate(valid, rng), False)


def place(path: Path, case: Case) -> None:
    """Put the case's bytes (or a directory) at ``path``, replacing what was there."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if case.data is None:
        path.mkdir()
        (path / "inner.txt").write_text("not the file\n")
    else:
        path.write_bytes(case.data)


def outcome(read: Callable[[Path], object], path: Path, case: Case) -> str:
    """``error`` / ``accepted`` / ``crash`` (see the module docstring), with the reason."""
    try:
        read(path)
    except BertkitError as err:
        if path.name not in str(err):
            return f"crash: {case.name}: the error does not name {path.name}: {err}"
        return "error"
    except Exception as err:  # any other exception is what the test looks for
        return f"crash: {case.name}: {type(err).__name__}: {err}"
    if case.must_fail:
        return f"crash: {case.name}: accepted a file with no valid reading"
    return "accepted"


def run_cases(read: Callable[[Path], object], path: Path, cases: Iterator[Case]) -> Counter:
    """Run every case; the tally counts outcomes, ``crashes`` lists the failures' reasons."""
    tally: Counter = Counter()
    crashes = []
    for case in cases:
        place(path, case)
        result = outcome(read, path, case)
        if result.startswith("crash"):
            crashes.append(result)
            result = "crash"
        tally[result] += 1
    tally["cases"] = sum(tally[k] for k in ("error", "accepted", "crash"))
    print(f"fuzz {path.name}: {tally['cases']} cases, {tally['error']} clear errors, "
          f"{tally['accepted']} accepted, {tally['crash']} crashes")
    assert not crashes, "\n".join(crashes[:10])
    return tally


WRONG_TYPES: tuple[object, ...] = (None, [], {}, 1.5, True)


def json_field_cases(document: object, fields: list[tuple], *, line_format: bool = False,
                     wrong: dict[tuple, tuple[object, ...]] | None = None,
                     optional: tuple[tuple, ...] = ()) -> Iterator[Case]:
    """Each field (a key path into ``document``) missing (an error unless ``optional``), then
    holding each wrong type (``wrong``, default :data:`WRONG_TYPES`); plus one extra field
    (allowed). ``line_format`` writes JSONL: ``document`` is a list of
    records and the paths index into it."""
    import copy
    import json

    def dump(doc: object) -> bytes:
        if line_format:
            return ("\n".join(json.dumps(r) for r in doc) + "\n").encode()  # type: ignore[attr-defined]
        return json.dumps(doc, indent=1).encode()

    def parent(doc: object, key_path: tuple) -> object:
        for key in key_path[:-1]:
            doc = doc[key]  # type: ignore[index]
        return doc

    for key_path in fields:
        doc = copy.deepcopy(document)
        del parent(doc, key_path)[key_path[-1]]  # type: ignore[attr-defined]
        yield Case(f"missing {key_path}", dump(doc), key_path not in optional)
        for value in (wrong or {}).get(key_path, WRONG_TYPES):
            doc = copy.deepcopy(document)
            parent(doc, key_path)[key_path[-1]] = value  # type: ignore[index]
            yield Case(f"{key_path} = {value!r}", dump(doc), True)
    doc = copy.deepcopy(document)
    parent(doc, fields[0])["zz_extra_field"] = [1, 2]  # type: ignore[index]
    yield Case("extra field", dump(doc), False)
