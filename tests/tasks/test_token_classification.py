"""NER alignment and decoding: word tags → piece labels → word tags → entities with offsets."""

from __future__ import annotations

import numpy as np
import pytest

from bertkit.data.readers import LabelMap, NerSentence, read_conll
from bertkit.errors import UsageError
from bertkit.tasks.token_classification import (
    IGNORE_INDEX,
    CharEntity,
    collate_token_classification,
    decode_entities,
    entities_with_offsets,
    token_classification_features,
    word_predictions,
)

SENTENCE = NerSentence(["Zoë", "visited", "Ångströmville", "and", "東京", "😀", "today"],
                       ["B-per", "O", "B-loc", "O", "B-loc", "O", "O"])
LABELS = LabelMap.from_labels(["O", "B-per", "I-per", "B-loc", "I-loc"])


def test_first_piece_alignment_by_hand(tokenizer):
    features = token_classification_features(tokenizer, [SENTENCE], label_map=LABELS,
                                             max_length=64)
    (window,) = features.windows.windows
    pieces = tokenizer.convert_ids_to_tokens(window.input_ids)
    assert pieces[:4] == ["[CLS]", "zoe", "visited", "ang"]  # Ångströmville splits
    ids = LABELS.label2id
    expected = []
    previous_word = None
    for word in window.word_ids:
        if word is None:
            expected.append(IGNORE_INDEX)
        elif word != previous_word:
            expected.append(ids[SENTENCE.tags[word]])
        else:
            expected.append(IGNORE_INDEX)
        previous_word = word
    assert features.labels == [expected]
    assert sum(label != IGNORE_INDEX for label in expected) == len(SENTENCE.words)


def test_all_pieces_option_turns_b_into_i_on_continuations(tokenizer):
    features = token_classification_features(tokenizer, [SENTENCE], label_map=LABELS,
                                             max_length=64, label_all_pieces=True)
    (window,) = features.windows.windows
    (labels,) = features.labels
    word = 2  # Ångströmville: B-loc on its first piece, I-loc on the others
    piece_labels = [LABELS.labels[lab]
                    for lab, w in zip(labels, window.word_ids, strict=True) if w == word]
    assert len(piece_labels) > 1
    assert piece_labels == ["B-loc"] + ["I-loc"] * (len(piece_labels) - 1)
    batch = collate_token_classification(features, [0], pad_id=tokenizer.pad_token_id)
    assert batch["labels"][0].tolist() == labels


def test_entities_carry_character_offsets_of_the_joined_words(tokenizer):
    features = token_classification_features(tokenizer, [SENTENCE], label_map=LABELS,
                                             max_length=64)
    (prediction,) = decode_entities(features.windows, features.labels, LABELS)
    text = "Zoë visited Ångströmville and 東京 😀 today"
    assert prediction.text == text
    assert prediction.tags == SENTENCE.tags
    assert prediction.entities == [
        CharEntity("per", 0, 3, "Zoë", 0, 1),
        CharEntity("loc", 12, 25, "Ångströmville", 2, 3),
        CharEntity("loc", 30, 32, "東京", 4, 5),
    ]
    for entity in prediction.entities:
        assert text[entity.start:entity.end] == entity.text


def test_long_sentence_reads_each_word_from_its_max_context_window(tokenizer):
    words = [f"w{i}" for i in range(40)]
    sentence = NerSentence(words, ["O"] * 40)
    features = token_classification_features(tokenizer, [sentence], max_length=12,
                                             doc_stride=4)
    windows = features.windows
    assert len(windows) > 3
    # Predict "the window number + 1" everywhere, except the max-context positions which carry
    # the word index: reading any other window would give a different value.
    predictions = []
    for number, window in enumerate(windows.windows):
        row = [1000 + number] * len(window)
        pairs = zip(window.word_ids, window.max_context, strict=True)
        for position, (word, is_max) in enumerate(pairs):
            if is_max:
                row[position] = word
        predictions.append(row)
    got = word_predictions(windows, predictions)  # ragged rows are padded internally
    assert got == [list(range(40))]


def test_raw_text_prediction_offsets(tokenizer):
    text = "  Ask Zoë   about Tokyo!"
    features = token_classification_features(tokenizer, [text], max_length=32)
    segment = features.windows.segments[0]
    words = [text[s:e] for s, e in segment.word_char_spans()]
    assert words == ["Ask", "Zoë", "about", "Tokyo", "!"]
    tags = ["O", "B-per", "O", "B-loc", "O"]
    entities = entities_with_offsets(segment, tags)
    assert [(e.text, e.start, e.end) for e in entities] == [("Zoë", 6, 9), ("Tokyo", 18, 23)]
    # decode with one-hot logits over LABELS
    (window,) = features.windows.windows
    logits = np.zeros((1, len(window), len(LABELS)))
    for position, word in enumerate(window.word_ids):
        tag = "O" if word is None else tags[word]
        logits[0, position, LABELS.label2id[tag]] = 1.0
    (prediction,) = decode_entities(features.windows, logits, LABELS)
    assert prediction.words == words and prediction.tags == tags


def test_input_errors(tokenizer):
    with pytest.raises(UsageError, match="mix"):
        token_classification_features(tokenizer, ["text", SENTENCE])
    with pytest.raises(UsageError, match="word-level tags"):
        token_classification_features(tokenizer, ["text"], label_map=LABELS)
    features = token_classification_features(tokenizer, [SENTENCE], max_length=64)
    with pytest.raises(UsageError, match="one row per window"):
        word_predictions(features.windows, np.zeros((2, 64)))


@pytest.mark.needs_artifacts
def test_wnut16_round_trip_is_exact(artifact, tokenizer):
    """Real tweets: tags → first-piece labels → (as if predicted) → the same tags, with short
    windows so that many tweets are split, and entity offsets that slice the joined text."""
    sentences = read_conll(artifact("wnut16") / "ner.txt")
    labels = LabelMap.from_sentences(sentences)
    features = token_classification_features(tokenizer, sentences, label_map=labels,
                                             max_length=24, doc_stride=7)
    assert features.unaligned == []
    assert len(features.windows) > 2 * len(sentences)  # most tweets need several windows
    predictions = decode_entities(features.windows, features.labels, labels)
    assert [p.tags for p in predictions] == [s.tags for s in sentences]
    n_entities = 0
    for prediction, sentence in zip(predictions, sentences, strict=True):
        for entity in prediction.entities:
            assert entity.text == " ".join(sentence.words[entity.word_start:entity.word_end])
            assert prediction.text[entity.start:entity.end] == entity.text
        n_entities += len(prediction.entities)
    assert n_entities == 1496  # data-sources.md: 1,496 entities
    first = predictions[0]
    assert [(e.type, e.text) for e in first.entities] == [
        ("facility", "Empire State Building"), ("facility", "ESB")]
