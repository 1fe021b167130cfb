"""Readers for the labelled files users bring: classification tables, CoNLL NER, SQuAD JSON.

Every reader returns plain records that remember where they came from (``path``, ``line``), so
a problem found later (an unknown label at evaluation, an answer the tokenizer cannot place)
still points at the file line. Every mistake in a file raises a
:class:`~bertkit.errors.DataFormatError` whose message starts with ``path:line:`` and says what
was expected; nothing is skipped silently.

Formats:

* **Classification**: CSV (comma, ``"`` quoting), TSV (tab, NO quoting: quotes are literal, as
  in GLUE's files), JSONL (one object per line), Orange ``.tab`` (tab, ``"`` quoting, three
  header lines: names, types, flags). CSV/TSV/.tab need a header row naming the columns. The
  format comes from the suffix (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.tab``) or
  ``format=``. Label kinds are chosen explicitly, never guessed from the values (see
  :data:`LabelKind`).
* **NER**: CoNLL style: one token per line, the token in the first column and the tag in the
  last, separated by a tab (then tokens may contain spaces) or by whitespace; a blank (or
  whitespace-only) line ends a sentence; ``-DOCSTART-`` lines are skipped. Tags must be BIO
  (``O``, ``B-X``, ``I-X``; IOB1 passes, see :func:`~bertkit.data.tags.validate_bio`).
* **Pairs** (sequence to sequence): TSV ``source<TAB>target`` or JSONL with source and
  target fields (:mod:`bertkit.data.readers.pairs`).
* **QA**: SQuAD 1.1 / 2.0 JSON (``data[].paragraphs[].{context, qas[]}``; each qa has ``id``,
  ``question``, ``answers[{text, answer_start}]`` and, in 2.0, ``is_impossible``).
"""

from bertkit.data.readers.classification import TableFormat, TextExample, read_classification
from bertkit.data.readers.common import LabelKind, LabelMap, location
from bertkit.data.readers.conll import NerSentence, read_conll
from bertkit.data.readers.pairs import PairFormat, TextPair, read_pairs
from bertkit.data.readers.squad import Answer, QAExample, SquadData, gold_answers, read_squad

__all__ = [
    "Answer",
    "LabelKind",
    "LabelMap",
    "NerSentence",
    "PairFormat",
    "QAExample",
    "SquadData",
    "TableFormat",
    "TextExample",
    "TextPair",
    "gold_answers",
    "location",
    "read_classification",
    "read_conll",
    "read_pairs",
    "read_squad",
]
