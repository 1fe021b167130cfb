"""Sentence-pair instances: structure, lengths, NSP/SOP label balance, and where B comes from.

Every synthetic token encodes its (document, sentence), so a test can tell whether B is the true
continuation of A or a span from another document.
"""

from __future__ import annotations

import random

import pytest

from bertkit.data.instances import (
    NspInstance,
    create_nsp_instances,
    iter_nsp_instances,
    tokenize_documents,
    truncate_seq_pair,
)
from bertkit.errors import ConfigError, UsageError

CLS, SEP = 2, 3


def segments(instance: NspInstance) -> tuple[list[int], list[int]]:
    a_len = instance.segment_ids.count(0)
    return instance.tokens[1 : a_len - 1], instance.tokens[a_len:-1]


def check_structure(instance: NspInstance, max_seq_length: int) -> None:
    tokens, types = instance.tokens, instance.segment_ids
    a_len = types.count(0)
    assert len(tokens) == len(types) <= max_seq_length
    assert types == [0] * a_len + [1] * (len(types) - a_len)
    assert tokens[0] == CLS and tokens[a_len - 1] == SEP and tokens[-1] == SEP
    a, b = segments(instance)
    assert a and b and CLS not in a + b and SEP not in a + b


def check_sources(synth, instances):
    """A is in-order text of one document; a positive B follows it in the same document, a
    negative B is text of another document."""
    for inst in instances:
        a, b = segments(inst)
        a_docs = {synth.decode(t)[0] for t in a}
        b_docs = {synth.decode(t)[0] for t in b}
        assert len(a_docs) == 1, "A comes from a single document"
        a_sents = [synth.decode(t)[1] for t in a]
        assert a_sents == sorted(a_sents), "A keeps the sentence order"
        b_sents = [synth.decode(t)[1] for t in b]
        if inst.is_random_next:
            assert len(b_docs) == 1 and b_docs != a_docs, "negative B from another document"
        else:
            assert b_docs == a_docs, "positive B from the same document"
            # ">=": a lone sentence is split, A its start and B its rest
            assert b_sents == sorted(b_sents) and b_sents[0] >= a_sents[-1], "B continues A"


@pytest.mark.parametrize("max_seq_length", [128, 32])
def test_nsp_structure_labels_and_sources(synth, max_seq_length):
    documents = synth.make_documents(1000, seed=1)
    instances = create_nsp_instances(documents, max_seq_length=max_seq_length,
                                     rng=random.Random(0), cls_id=CLS, sep_id=SEP)
    assert len(instances) > 4000
    for inst in instances:
        check_structure(inst, max_seq_length)
    check_sources(synth, instances)
    negatives = sum(inst.is_random_next for inst in instances) / len(instances)
    assert negatives == pytest.approx(0.5, abs=0.03)


def test_googles_single_segment_rule_skews_labels(synth):
    """Google's rule, kept as an option: lone segments always get a random B, which at document
    ends tips the balance towards negatives (the reason "split" is the default)."""
    documents = synth.make_documents(1000, seed=1)
    instances = create_nsp_instances(documents, rng=random.Random(0), cls_id=CLS, sep_id=SEP,
                                     single_segment="random")
    check_sources(synth, instances)
    for inst in instances:
        a, b = segments(inst)
        assert {synth.decode(t) for t in a}.isdisjoint(synth.decode(t) for t in b)  # never split
    negatives = sum(inst.is_random_next for inst in instances) / len(instances)
    assert 0.53 < negatives < 0.65


def test_every_sentence_used_and_unused_segments_put_back(synth):
    documents = synth.make_documents(60, seed=2, sentence_len=(20, 40))
    instances = create_nsp_instances(documents, max_seq_length=512, short_seq_prob=0.0,
                                     rng=random.Random(1), cls_id=CLS, sep_id=SEP)
    # At 512 nothing is truncated, so each document's sentences appear in its own A/positive-B
    # segments exactly once (put-back segments are read again, not lost or repeated).
    seen: dict[int, list[int]] = {}
    for inst in instances:
        a, b = segments(inst)
        own = a if inst.is_random_next else a + b
        for sentence in dict.fromkeys(synth.decode(t) for t in own):
            seen.setdefault(sentence[0], []).append(sentence[1])
    for d, doc in enumerate(documents):
        assert seen[d] == list(range(len(doc)))


def short_document_fraction(synth, documents, short_seq_prob):
    """Fraction of documents none of whose instances reaches 128 tokens (grouped by A's
    document, which is the document being read)."""
    longest: dict[int, int] = {}
    for inst in iter_nsp_instances(documents, short_seq_prob=short_seq_prob,
                                   rng=random.Random(4), cls_id=CLS, sep_id=SEP):
        doc = synth.decode(inst.tokens[1])[0]
        longest[doc] = max(longest.get(doc, 0), len(inst.tokens))
    assert len(longest) == len(documents)
    return sum(n < 128 for n in longest.values()) / len(documents)


def test_short_seq_prob_is_honoured_per_document(synth):
    documents = synth.make_documents(1500, seed=3, sentences=(30, 40), sentence_len=(4, 10))
    # A short target t ~ U[2, 125] keeps every instance of its document below 128 tokens
    # when t < ~116 (sentences are at most 10 tokens long).
    assert short_document_fraction(synth, documents, 0.2) == pytest.approx(0.2 * 114 / 124,
                                                                           abs=0.03)
    assert short_document_fraction(synth, documents, 0.0) < 0.01


def test_sop_swaps_half_and_stays_in_one_document(synth):
    documents = synth.make_documents(200, seed=5)
    instances = create_nsp_instances(documents, rng=random.Random(6), cls_id=CLS, sep_id=SEP,
                                     objective="sop")
    for inst in instances:
        check_structure(inst, 128)
        a, b = segments(inst)
        da = [synth.decode(t) for t in a]
        db = [synth.decode(t) for t in b]
        assert {d for d, _ in da} == {d for d, _ in db}, "SOP pairs come from one document"
        if inst.is_random_next:  # swapped: B's text precedes A's
            assert max(s for _, s in db) <= min(s for _, s in da)
        else:
            assert max(s for _, s in da) <= min(s for _, s in db)
    swapped = sum(inst.is_random_next for inst in instances) / len(instances)
    assert swapped == pytest.approx(0.5, abs=0.04)


def test_sop_works_on_a_single_document(synth):
    documents = synth.make_documents(1, seed=7)
    assert create_nsp_instances(documents, rng=random.Random(0), cls_id=CLS, sep_id=SEP,
                                objective="sop")


def test_nsp_needs_two_documents(synth):
    documents = [*synth.make_documents(1, seed=7), [], [[]]]
    with pytest.raises(UsageError, match="2 non-empty documents"):
        create_nsp_instances(documents, rng=random.Random(0), cls_id=CLS, sep_id=SEP)


def test_same_seed_same_instances(synth):
    documents = synth.make_documents(50, seed=8)
    def make(seed):
        return create_nsp_instances(documents, rng=random.Random(seed), cls_id=CLS, sep_id=SEP)
    assert make(1) == make(1)
    assert make(1) != make(2)


def test_truncate_seq_pair_trims_the_longer_side_from_both_ends():
    rng = random.Random(0)
    fronts = backs = 0
    for _ in range(200):
        a, b = list(range(10)), list(range(100, 130))
        truncate_seq_pair(a, b, 20, rng)
        assert len(a) + len(b) == 20 and len(a) == 10  # only B, the longer, shrank
        fronts += b[0] != 100
        backs += b[-1] != 129
        assert b == list(range(b[0], b[0] + 10))  # a contiguous window survives
    assert fronts > 150 and backs > 150


@pytest.mark.parametrize("kwargs", [{"max_seq_length": 4}, {"short_seq_prob": 1.5},
                                    {"nsp_prob": -0.1}, {"objective": "mlm"}])
def test_bad_arguments(synth, kwargs):
    with pytest.raises(ConfigError):
        create_nsp_instances(synth.make_documents(3, seed=0), rng=random.Random(0),
                             cls_id=CLS, sep_id=SEP, **kwargs)


def test_tokenize_documents_feeds_pairing():
    vocab = {w: i for i, w in enumerate("abcdefgh", start=5)}
    def tokenize(sentences):
        return [[vocab[w] for w in s.split() if w in vocab] for s in sentences]
    texts = [["a b", "zzz", "c d e"], ["zzz"], ["f g", "h"]]
    documents = list(tokenize_documents(iter(texts), tokenize))
    assert [[list(s) for s in d] for d in documents] == [[[5, 6], [7, 8, 9]], [[10, 11], [12]]]
    instances = create_nsp_instances(documents, rng=random.Random(0), cls_id=CLS, sep_id=SEP)
    assert all(type(t) is int for inst in instances for t in inst.tokens)
