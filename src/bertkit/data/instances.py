"""Training instances: BERT sentence pairs written once to shards, and RoBERTa packed sequences.

**BERT (static masking).** :func:`iter_nsp_instances` follows Google's
``create_pretraining_data.py`` step for step: per document a target length of
``max_seq_length - 3`` (or, with probability ``short_seq_prob``, one drawn uniformly from
``[2, max_seq_length - 3]`` — drawn once per document, as Google does, so short targets
cover about ``short_seq_prob`` of the *documents*); segments (sentences) accumulate until the
target is reached; a random split point makes A; B is the true continuation, or — with
probability ``nsp_prob`` — a span from a random *other* document (up to 10 draws to avoid the
same one), in which case the unused segments go back to be read again; the longer of A and B
loses tokens, one at a time from a randomly chosen end, until the pair fits.
:func:`build_nsp_shards` repeats that ``dupe_factor`` times (each pass gives new pairs *and* a
new mask, as in Google's script) and :func:`write_shards` stores the masked instances once, as
memory-mapped numpy arrays that :class:`ShardDataset` reads back with no tokenisation.

Deliberate differences from Google, each measured or free:

- **One-segment chunks** (``single_segment``). Google always gives such a chunk a random B.
  Those chunks cluster at document ends, where every random B puts segments back and so makes
  another, smaller end chunk — a cascade that ends in a forced negative. Measured on synthetic
  documents of 8–120 sentences, that pushes the share of random-next labels to 54–60 %,
  so a constant classifier beats 50 % and NSP accuracy misleads. The default ``"split"`` gives a
  one-segment chunk the same ``nsp_prob`` choice, its positive being the segment cut at a
  random token (A = its start, B = the rest); each label is then an independent draw and the
  balance is ``nsp_prob`` in expectation. ``"random"`` is Google's rule, exactly.
- Documents are shuffled per pass instead of once (decorrelates the dupes, costs nothing).
- ``objective="sop"`` (ALBERT's sentence-order prediction): B is always the true
  continuation and the pair is swapped with probability ``nsp_prob`` (label 1 = swapped); a
  one-segment chunk is split the same way, so the label means only "order".

**RoBERTa (dynamic masking).** :func:`pack_sequences` concatenates documents, with a separator
between them, and cuts the stream into full-length sequences; the mask is drawn later, per
batch, by :class:`~bertkit.data.batch.DynamicMaskingCollator`.

Shard layout (one directory): ``manifest.json`` — written last, so a directory without it is an
interrupted write — and per shard ``<name>.tokens.npy`` (int32, all masked token ids end to end),
``<name>.index.npy`` (int64, one row per instance, columns :data:`INDEX_COLUMNS`) and
``<name>.mlm.npy`` (int32 rows ``(position, original id)`` of the predicted positions).

Legend: B batch, T tokens.
"""

from bertkit.data.packing import pack_sequences
from bertkit.data.pairs import (
    Document,
    NspInstance,
    PairObjective,
    SingleSegment,
    create_nsp_instances,
    iter_nsp_instances,
    tokenize_documents,
    truncate_seq_pair,
)
from bertkit.data.shards import (
    INDEX_COLUMNS,
    SHARD_FORMAT,
    SHARD_VERSION,
    ShardDataset,
    build_nsp_shards,
    write_shards,
)

__all__ = [
    "INDEX_COLUMNS",
    "SHARD_FORMAT",
    "SHARD_VERSION",
    "Document",
    "NspInstance",
    "PairObjective",
    "ShardDataset",
    "SingleSegment",
    "build_nsp_shards",
    "create_nsp_instances",
    "iter_nsp_instances",
    "pack_sequences",
    "tokenize_documents",
    "truncate_seq_pair",
    "write_shards",
]
