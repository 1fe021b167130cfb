"""The sliding-window engine (bertkit.data.windows): coverage, max-context, layout, offsets.

The max-context oracle in this file is Google's ``_check_is_max_context`` transcribed as a
plain loop, independent of the vectorised implementation; the hand-computed cases spell out
the scores.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from bertkit.data.windows import (
    Span,
    collate_windows,
    make_windows,
    max_context_windows,
    plan_spans,
)
from bertkit.errors import InputError, UsageError


def google_is_max_context(spans: list[Span], span_index: int, position: int) -> bool:
    """Google's run_squad.py ``_check_is_max_context``, verbatim in logic."""
    best_score, best_index = None, None
    for index, span in enumerate(spans):
        end = span.start + len(span) - 1
        if position < span.start or position > end:
            continue
        left, right = position - span.start, end - position
        score = min(left, right) + 0.01 * len(span)
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return span_index == best_index


# --------------------------------------------------------------------------- span planning


def test_plan_spans_hand_computed():
    # 10 tokens, 4 per window, step 2: starts 0, 2, 4, 6; the last ends at token 9.
    assert plan_spans(10, 4, 2) == [Span(0, 4), Span(2, 6), Span(4, 8), Span(6, 10)]
    # 7 tokens: the third window is short (Google: length = remaining tokens).
    assert plan_spans(7, 4, 2) == [Span(0, 4), Span(2, 6), Span(4, 7)]
    # fits in one window: exactly one span, nothing cut
    assert plan_spans(3, 4, 2) == [Span(0, 3)]
    # a step larger than the window is clamped to the window: no gap, no overlap
    assert plan_spans(10, 4, 100) == [Span(0, 4), Span(4, 8), Span(8, 10)]
    # empty text still gets one (empty) window
    assert plan_spans(0, 4, 2) == [Span(0, 0)]


@pytest.mark.parametrize("bad", [(5, 0, 1), (5, 3, 0)])
def test_plan_spans_rejects_bad_sizes(bad):
    with pytest.raises(UsageError):
        plan_spans(*bad)


def test_max_context_hand_computed():
    spans = plan_spans(10, 4, 2)  # [0,4) [2,6) [4,8) [6,10)
    # token 2: span0 min(2,1)=1 -> 1.04; span1 min(0,3)=0 -> 0.04          => span0
    # token 3: span0 min(3,0)=0 -> 0.04; span1 min(1,2)=1 -> 1.04          => span1
    # token 4: span1 min(2,1)=1 -> 1.04; span2 min(0,3)=0 -> 0.04          => span1
    # token 5: span1 min(3,0)=0;          span2 min(1,2)=1                 => span2
    # token 6: span2 min(2,1)=1;          span3 min(0,3)=0                 => span2
    # token 7: span2 min(3,0)=0;          span3 min(1,2)=1                 => span3
    assert max_context_windows(spans, 10).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_max_context_ties():
    # Equal scores: [0,4) and [1,5), token 2: min(2,1)=1 and min(1,2)=1, both + 0.04 -> the
    # earlier window wins (Google's strict '>').
    assert max_context_windows([Span(0, 4), Span(1, 5)], 5).tolist()[2] == 0
    # Equal min, different lengths: [0,4) and [3,5), token 3: min(3,0)=0 + 0.04 vs
    # min(0,1)=0 + 0.02 -> the longer window wins.
    assert max_context_windows(plan_spans(5, 4, 3), 5).tolist() == [0, 0, 0, 0, 1]


def test_max_context_matches_google_on_random_layouts():
    rng = random.Random(7)
    for _ in range(300):
        n, capacity = rng.randint(0, 60), rng.randint(1, 12)
        stride = rng.randint(1, 14)
        spans = plan_spans(n, capacity, stride)
        best = max_context_windows(spans, n)
        for token in range(n):
            owners = [i for i, s in enumerate(spans) if token in s]
            assert owners, "a token in no window"
            assert [google_is_max_context(spans, i, token) for i in owners].count(True) == 1
            assert google_is_max_context(spans, int(best[token]), token)
        # windows never exceed the capacity, start in order, and the last reaches the end
        assert all(len(s) <= capacity for s in spans)
        assert spans[-1].end == n
        assert all(b.start - a.start == min(stride, capacity) for a, b in pairwise(spans))


# --------------------------------------------------------------------------- real tokenizer


def test_short_pair_equals_the_tokenizers_own_encoding(tokenizer):
    question, context = "Who wrote it?", "The café in Zürich was written about by Ångström."
    windows = make_windows(tokenizer, [question], [context], max_length=64)
    assert len(windows) == 1
    own = tokenizer(question, context, return_offsets_mapping=True)
    window = windows.windows[0]
    assert window.input_ids == own["input_ids"]
    assert window.token_type_ids == own["token_type_ids"]
    context_offsets = [o for o, s in zip(window.offsets, window.sequence_ids, strict=True)
                       if s == 1]
    own_context = [o for o, t in zip(own["offset_mapping"], own["token_type_ids"], strict=True)
                   if t == 1][:-1]  # drop the final [SEP]
    assert context_offsets == own_context


def test_long_text_is_split_never_truncated(tokenizer):
    text = " ".join(f"token{i}" for i in range(300))
    full = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = make_windows(tokenizer, [text], max_length=32, doc_stride=10)
    assert len(windows) > 1
    seen = []
    for window in windows.windows:
        assert len(window) <= 32
        assert window.input_ids[0] == tokenizer.cls_token_id
        assert window.input_ids[-1] == tokenizer.sep_token_id
        content = [t for t in window.token_index if t is not None]
        assert [window.input_ids[window.position_of(t)] for t in content] == \
            [full[t] for t in content]
        seen.extend(content)
    assert sorted(set(seen)) == list(range(len(full)))  # every token covered
    # every token is max-context in exactly one window, and that window is best_window
    flags = {}
    for index, window in enumerate(windows.windows):
        for token, is_max in zip(window.token_index, window.max_context, strict=True):
            if is_max:
                assert token not in flags
                flags[token] = index
    assert flags == {t: int(w) for t, w in enumerate(windows.best_window[0])}


def test_pair_keeps_the_first_text_whole_in_every_window(tokenizer):
    question = "what is the colour of the sky?"
    context = " ".join(["the sky is blue"] * 60)
    windows = make_windows(tokenizer, [question, "short?"], [context, context], max_length=40,
                           doc_stride=7)
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    for window in [windows.windows[i] for i in windows.example_windows[0]]:
        firsts = [i for i, s in zip(window.input_ids, window.sequence_ids, strict=True) if s == 0]
        assert firsts == q_ids
        assert len(window) <= 40
    # the shorter question leaves more room: fewer windows for the same context
    assert len(windows.example_windows[1]) < len(windows.example_windows[0])
    assert windows.window_example.tolist() == [w.example for w in windows.windows]


def test_offsets_index_the_original_text_with_unicode(tokenizer):
    text = "Zoë met 東京 friends 😀 at the Café Ångström"
    windows = make_windows(tokenizer, [text], max_length=8, doc_stride=3)
    segment = windows.segments[0]
    pieces = [text[s:e] for s, e in segment.offsets]
    assert "東" in pieces and "京" in pieces and "Café" in pieces and "Zoë" in pieces
    assert text[segment.offsets[-1][0]:segment.offsets[-1][1]].startswith("str")  # ##str…
    for window in windows.windows:
        for token, offset in zip(window.token_index, window.offsets, strict=True):
            if token is not None:
                assert offset == segment.offsets[token]


def test_split_words_offsets_index_the_space_joined_text(tokenizer):
    words = ["Empire", "State", "Buildingxyzzy", "in", "NYC"]
    windows = make_windows(tokenizer, [words], max_length=6, doc_stride=2,
                           is_split_into_words=True)
    segment = windows.segments[0]
    assert segment.text == "Empire State Buildingxyzzy in NYC"
    assert segment.word_char_spans() == [(0, 6), (7, 12), (13, 26), (27, 29), (30, 33)]
    for (start, end), word in zip(segment.offsets, segment.word_ids, strict=True):
        assert segment.text[start:end].lower() in words[word].lower()
        assert segment.word_char_spans()[word][0] <= start < end <= \
            segment.word_char_spans()[word][1]


def test_first_text_too_long_is_a_clear_error(tokenizer):
    with pytest.raises(InputError, match=r"question 'q7'.*max_length=8"):
        make_windows(tokenizer, ["a very long question indeed with many words"], ["ctx"],
                     max_length=8, example_names=["question 'q7'"])


def test_bad_arguments(tokenizer):
    with pytest.raises(UsageError, match="doc_stride"):
        make_windows(tokenizer, ["x"], max_length=8, doc_stride=0)
    with pytest.raises(UsageError, match="max_length"):
        make_windows(tokenizer, ["x"], max_length=0)
    with pytest.raises(UsageError, match="text_pairs"):
        make_windows(tokenizer, ["x", "y"], ["z"])


def test_empty_inputs(tokenizer):
    assert len(make_windows(tokenizer, [])) == 0
    windows = make_windows(tokenizer, [""], max_length=8)
    assert len(windows) == 1
    assert windows.windows[0].input_ids == [tokenizer.cls_token_id, tokenizer.sep_token_id]


def test_collate_pads_and_masks(tokenizer):
    windows = make_windows(tokenizer, ["one two three four five six", "hi"], max_length=6,
                           doc_stride=2)
    batch = collate_windows(windows.windows, pad_id=tokenizer.pad_token_id)
    lengths = [len(w) for w in windows.windows]
    assert batch["input_ids"].shape == (len(lengths), max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    last = windows.windows[-1]
    assert batch["input_ids"][-1, len(last):].eq(tokenizer.pad_token_id).all()
