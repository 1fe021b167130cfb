"""Labelled data sets that need converting before bertkit's readers can take them.

Most real data sets bertkit is tested on are read straight from their artifact folder (Reuters
R8 and 20 Newsgroups are Orange ``.tab`` files for :func:`~bertkit.tasks.read_classification`,
WNUT-16 is CoNLL). The Amazon fine-food reviews are not: Debian's ``r-cran-modeldata`` stores
them as R data frames in a lazy-load database. :func:`finefood_reviews` reads them with
:mod:`bertkit.resources.rformat`; :func:`write_finefood_reviews` writes JSONL files (``text``,
``label``,
``product``) that ``bertkit finetune classify`` reads with its default columns.

The fine-food reviews (SNAP "web-FineFoods", sampled by modeldata's authors): the label is
``great`` for a 5-star rating and ``other`` for 1–4 stars, exactly as the package codes it;
train 4,000 (2,600 great) and test 1,000 (658 great), no product in both splits. Reviews keep
their text except the HTML line breaks (``<br />``), which become spaces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bertkit import _fileio
from bertkit.data.readers import TextExample
from bertkit.errors import DataFormatError
from bertkit.resources.artifacts import fetch
from bertkit.resources.rformat import data_frame, lazy_load

__all__ = ["FINEFOOD_SPLITS", "finefood_reviews", "write_finefood_reviews"]

FINEFOOD_ARTIFACT = "modeldata"
FINEFOOD_SPLITS = {"train": "training_data", "test": "testing_data"}
"""Split name → the R object holding it."""
FINEFOOD_LABELS = ("great", "other")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def finefood_reviews(*, cache_dir: Path | None = None,
                     quiet: bool = True) -> dict[str, list[TextExample]]:
    """The fine-food reviews by split (``train``, ``test``), fetching the artifact if needed.

    Each :class:`TextExample` has the review as ``text``, ``great``/``other`` as ``label``,
    and ``path``/``line`` pointing at the R database and the row (1-based).

    Raises:
        ArtifactError: the package cannot be fetched.
        DataFormatError: the data are not the expected data frames (a missing column, an
            empty review or an unknown label names the object and row).
    """
    folder = fetch(FINEFOOD_ARTIFACT, cache_dir=cache_dir, quiet=quiet)
    return {split: [example for example, _ in _read_split(folder, name)]
            for split, name in FINEFOOD_SPLITS.items()}


def _read_split(folder: Path, name: str) -> list[tuple[TextExample, str | None]]:
    """One split's examples, each with its product id."""
    path = folder / "Rdata.rdb"
    columns = data_frame(lazy_load(folder, name), f"{path}[{name}]")
    missing = [c for c in ("product", "review", "score") if c not in columns]
    if missing:
        raise DataFormatError(f"object {name!r} has no column(s) {missing}; the columns are "
                              f"{sorted(columns)}", path)
    examples = []
    rows = zip(columns["review"], columns["score"], columns["product"], strict=True)
    for row, (review, score, product) in enumerate(rows, start=1):
        text = " ".join(_BREAK.sub(" ", review or "").split())
        if not text or score not in FINEFOOD_LABELS:
            raise DataFormatError(f"object {name!r} row {row}: review {review!r}, score "
                                  f"{score!r}; expected a text and one of {FINEFOOD_LABELS}",
                                  path)
        examples.append((TextExample(text, None, score, path, row), product))
    return examples


def write_finefood_reviews(out_dir: str | Path, *, cache_dir: Path | None = None,
                           quiet: bool = True) -> dict[str, Path]:
    """Write ``finefood-{train,test}.jsonl`` (atomically) into ``out_dir``; return the paths.

    One JSON object per line: ``{"text": …, "label": "great"|"other", "product": …}``.
    """
    folder = fetch(FINEFOOD_ARTIFACT, cache_dir=cache_dir, quiet=quiet)
    written = {}
    for split, name in FINEFOOD_SPLITS.items():
        lines = [json.dumps({"text": e.text, "label": e.label, "product": product},
                            ensure_ascii=False)
                 for e, product in _read_split(folder, name)]
        path = Path(out_dir) / f"finefood-{split}.jsonl"
        _fileio.write_text(path, "\n".join(lines) + "\n")
        written[split] = path
    return written
