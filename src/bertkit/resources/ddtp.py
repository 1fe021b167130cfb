"""A real parallel corpus: Debian's translated package descriptions (DDTP), as sentence pairs.

Why this source: bertkit's machines reach no data hub, but apt itself fetches the Debian
Description Translation Project's work. ``apt-get update -o Acquire::Languages=en,de,…`` puts
one index per language, ``*_i18n_Translation-XX.lz4``, in apt's lists directory; each record
is::

    Package: 0ad
    Description-md5: d943033bedada21853d2ae54a2578a7b
    Description-de: Echtzeit-Strategiespiel über antike Kriegsführung      <- short description
     0 A.D. ist ein freies, quelloffenes, …                                <- long description,
     .                                                                        paragraphs split
     Dieses Paket enthält …                                                   by a lone " ."

``Description-md5`` is the hash of the *English* original, so joining a language's records
with the English ones on it pairs a translation with exactly the English text it translates
(an outdated translation has the old hash and finds no partner). One pair per hash: packages
sharing a description (``foo`` and ``foo-data``) are one pair, not several.

:func:`build_ddtp` writes, per language pair, ``OUT/<xx>-en/{train,dev,test}.jsonl``; each line
holds ``source`` / ``target`` (the short descriptions: one line each side),
``source_paragraph`` / ``target_paragraph`` (short description + first paragraph),
``md5`` and ``package`` (the first package carrying it), which
:func:`bertkit.data.readers.read_pairs` reads. The split is decided by the hash alone (its first
32 bits as a fraction), so no description is on both sides of a split, and a description's
split is the same for every language: a German test sentence is a French test sentence too.

The output is cached like the other built resources: ``OUT/ddtp.meta.json`` records the recipe,
the SHA-256 of every apt index read and of every file written; a second call whose inputs and
outputs still match returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bertkit import _fileio
from bertkit.errors import ArtifactError, DataFormatError, UsageError

__all__ = ["DDTP_LANGUAGES", "SPLITS", "DdtpReport", "Description", "build_ddtp",
           "parse_translation", "split_of", "translation_files"]

DDTP_LANGUAGES = ("de", "fr", "ru", "es")
"""Languages paired with English by default (the ones bookworm translates most)."""
SPLITS = ("train", "dev", "test")
APT_LISTS = Path("/var/lib/apt/lists")
APT_HELPER = Path("/usr/lib/apt/apt-helper")
META_FILE = "ddtp.meta.json"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Description:
    """One translated description: the short line and the long description's paragraphs
    (each paragraph's lines joined by single spaces)."""

    package: str
    md5: str
    short: str
    paragraphs: tuple[str, ...]

    @property
    def short_and_first_paragraph(self) -> str:
        return f"{self.short} {self.paragraphs[0]}" if self.paragraphs else self.short


@dataclass
class DdtpReport:
    """What was written: pair counts per language pair and split, where, and whether cached.
    ``test_seen_in_train`` counts test pairs whose short source *and* target also occur as a
    training pair (different descriptions with the same short line, e.g. ``foo``/``foo-data``
    variants): the hash split keeps descriptions apart, not identical sentences."""

    out_dir: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    test_seen_in_train: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # apt index file -> sha256
    cached: bool = False


# --------------------------------------------------------------------------- parsing


def parse_translation(text: str, language: str, path: str | Path = "<text>"
                      ) -> dict[str, Description]:
    """The descriptions of one Translation index, by ``Description-md5`` (first one wins).

    Raises:
        DataFormatError: a record without ``Description-md5`` or without the
            ``Description-<language>`` field, naming the file and the record's first line.
    """
    key = f"Description-{language}"
    found: dict[str, Description] = {}
    for line_no, fields, long_lines in _records(text):
        md5, short = fields.get("Description-md5"), fields.get(key)
        if not md5 or short is None:
            missing = "Description-md5" if not md5 else key
            raise DataFormatError(f"record has no {missing!r} field; expected a Debian "
                                  f"Translation-{language} record", path, line_no)
        if md5 not in found and short.strip():
            found[md5] = Description(fields.get("Package", ""), md5, short.strip(),
                                     _paragraphs(long_lines))
    return found


def _records(text: str) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """``(first line number, {field: value}, continuation lines of the last field)`` per
    blank-line separated record (the long description is the last field's continuation)."""
    fields: dict[str, str] = {}
    long_lines: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if fields:
                yield start, fields, long_lines
            fields, long_lines = {}, []
            continue
        if not fields:
            start = number
        if line[0] in " \t":
            long_lines.append(line)
        else:
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
            long_lines = []
    if fields:
        yield start, fields, long_lines


def _paragraphs(lines: Sequence[str]) -> tuple[str, ...]:
    """Paragraphs of a long description: a line holding only ``.`` separates them."""
    paragraphs, current = [], []
    for line in lines:
        content = line.strip()
        if content == ".":
            if current:
                paragraphs.append(" ".join(current))
            current = []
        elif content:
            current.append(content)
    if current:
        paragraphs.append(" ".join(current))
    return tuple(paragraphs)


def split_of(md5: str, *, dev_fraction: float = 0.05, test_fraction: float = 0.05) -> str:
    """``"test"``, ``"dev"`` or ``"train"`` from the hash alone: its first 32 bits as a number
    in [0, 1); test takes the lowest ``test_fraction``, dev the next ``dev_fraction``."""
    try:
        position = int(md5[:8], 16) / 2**32
    except ValueError:
        raise DataFormatError(f"Description-md5 {md5!r} is not hexadecimal") from None
    if position < test_fraction:
        return "test"
    return "dev" if position < test_fraction + dev_fraction else "train"


# --------------------------------------------------------------------------- apt's files


def translation_files(language: str, lists_dir: Path = APT_LISTS) -> list[Path]:
    """apt's Translation indexes for ``language`` (every suite and component), sorted."""
    stem = f"_i18n_Translation-{language}"
    return sorted(p for p in lists_dir.glob(f"*{stem}*") if p.is_file()
                  # not Translation-en_GB for "en", nor apt's partial or failed downloads
                  and p.name.partition(stem)[2].split(".")[0] == ""
                  and not p.name.endswith((".diff", ".FAILED")))


def _ensure_lists(languages: Sequence[str], lists_dir: Path, update: bool) -> None:
    """Run ``apt-get update`` for the languages whose index is missing, or say why not."""
    missing = [lang for lang in languages if not translation_files(lang, lists_dir)]
    if not missing:
        return
    command = ["apt-get", "update", "-o", f"Acquire::Languages={','.join(languages)}"]
    hint = f"`{' '.join(command)}` (as root) fetches them"
    if not update or lists_dir != APT_LISTS:
        raise ArtifactError(f"no Debian Translation index for {missing} in {lists_dir}; {hint}")
    if shutil.which("apt-get") is None:
        raise ArtifactError("apt is not available on this system (no apt-get): the DDTP "
                            "parallel corpus comes from a Debian/Ubuntu apt")
    if os.geteuid() != 0:
        raise ArtifactError(f"no Debian Translation index for {missing}; {hint}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    still = [lang for lang in missing if not translation_files(lang, lists_dir)]
    if result.returncode != 0 or still:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ArtifactError(f"apt-get update did not fetch the Translation index for "
                            f"{still or missing} (exit {result.returncode}): {tail}")


def read_index(path: Path) -> str:
    """An index's text: plain files are read, compressed ones (``.lz4``, ``.gz``, ``.xz``)
    go through ``apt-helper cat-file``, apt's own decompressor."""
    if path.suffix not in (".lz4", ".gz", ".xz", ".bz2", ".zst"):
        return path.read_text(encoding="utf-8")
    if not APT_HELPER.is_file():
        raise ArtifactError(f"{path} is compressed and {APT_HELPER} (apt's decompressor) is "
                            "missing: apt is not available on this system")
    result = subprocess.run([str(APT_HELPER), "cat-file", str(path)], capture_output=True,
                            check=False)
    if result.returncode != 0:
        raise ArtifactError(f"apt-helper cat-file {path} failed: "
                            f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode("utf-8")


def _descriptions(language: str, files: Iterable[Path]) -> dict[str, Description]:
    found: dict[str, Description] = {}
    for path in files:
        for md5, description in parse_translation(read_index(path), language, path).items():
            found.setdefault(md5, description)
    return found


# --------------------------------------------------------------------------- building


def build_ddtp(
    out_dir: str | Path,
    *,
    languages: Sequence[str] = DDTP_LANGUAGES,
    dev_fraction: float = 0.05,
    test_fraction: float = 0.05,
    lists_dir: str | Path = APT_LISTS,
    update: bool = True,
    force: bool = False,
) -> DdtpReport:
    """Write ``<xx>-en/{train,dev,test}.jsonl`` pair files into ``out_dir``; return counts.

    Args:
        languages: the non-English sides (each paired with English).
        dev_fraction, test_fraction: shares of the descriptions (by hash) held out.
        lists_dir: apt's lists directory (another folder holding Translation files works,
            e.g. a test's synthetic index; then nothing is fetched).
        update: run ``apt-get update`` (as root) when an index is missing.
        force: rebuild even if the cached files match.

    Raises:
        UsageError: bad fractions or language codes.
        ArtifactError: apt (or the index of a language) is unavailable, with the reason.
    """
    languages = tuple(languages)
    if not languages or any(not lang.isalpha() or lang == "en" for lang in languages):
        raise UsageError(f"languages={list(languages)}: expected non-English language codes "
                         "such as de, fr")
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1
            and dev_fraction + test_fraction < 1):
        raise UsageError(f"dev_fraction={dev_fraction}, test_fraction={test_fraction}: "
                         "expected shares in [0, 1) that leave some training data")
    out, lists = Path(out_dir), Path(lists_dir)
    _ensure_lists(("en", *languages), lists, update)
    files = {lang: translation_files(lang, lists) for lang in ("en", *languages)}
    inputs = {p.name: _sha256(p) for paths in files.values() for p in paths}
    recipe = {"version": RECIPE_VERSION, "languages": list(languages),
              "dev_fraction": dev_fraction, "test_fraction": test_fraction, "inputs": inputs}
    cached = None if force else _cached_report(out, recipe)
    if cached is not None:
        return cached

    english = _descriptions("en", files["en"])
    report = DdtpReport(out_dir=str(out), inputs=inputs)
    written: dict[str, str] = {}
    for lang in languages:
        rows: dict[str, list[dict[str, str]]] = {split: [] for split in SPLITS}
        for md5, foreign in sorted(_descriptions(lang, files[lang]).items()):
            if md5 not in english:
                continue
            split = split_of(md5, dev_fraction=dev_fraction, test_fraction=test_fraction)
            rows[split].append({
                "source": foreign.short, "target": english[md5].short,
                "source_paragraph": foreign.short_and_first_paragraph,
                "target_paragraph": english[md5].short_and_first_paragraph,
                "md5": md5, "package": english[md5].package})
        pair = f"{lang}-en"
        report.counts[pair] = {split: len(rows[split]) for split in SPLITS}
        seen = {(r["source"], r["target"]) for r in rows["train"]}
        report.test_seen_in_train[pair] = sum((r["source"], r["target"]) in seen
                                              for r in rows["test"])
        for split in SPLITS:
            relative = f"{pair}/{split}.jsonl"
            _fileio.write_text(out / relative, "".join(
                json.dumps(row, ensure_ascii=False) + "\n" for row in rows[split]))
            written[relative] = _sha256(out / relative)
    _fileio.write_json(out / META_FILE, {"recipe": recipe, "outputs": written,
                                         "report": asdict(report)})
    return report


def _cached_report(out: Path, recipe: dict) -> DdtpReport | None:
    """The recorded report when ``out`` was built with ``recipe`` and every output file still
    has its recorded SHA-256; else None (rebuild)."""
    try:
        meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("recipe") != recipe:
        return None
    outputs = meta.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return None
    for relative, digest in outputs.items():
        if not (out / relative).is_file() or _sha256(out / relative) != digest:
            return None
    report = DdtpReport(**meta["report"])
    report.cached = True
    return report


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
