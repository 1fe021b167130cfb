"""Fill-mask: a planted token ranked first, several masks, targets, whole words, errors, CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from bertkit import BertForMaskedLM, BertModel, CheckpointError, InputError, Tokenizer, UsageError
from bertkit.cli import main
from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import (
    _fill,
    _whole_word,
    _whole_word_blanks,
    continuation_ids,
    fill_mask,
    load_fill_mask,
)

from .conftest import COLOURS


def test_planted_colour_is_ranked_first(planted_mlm: BertForMaskedLM,
                                        tiny_tokenizer: Tokenizer) -> None:
    texts = [f"The {thing} is [MASK]." for thing in COLOURS]
    results = fill_mask(planted_mlm, tiny_tokenizer, texts, top_k=3)
    for result, (thing, colour) in zip(results, COLOURS.items(), strict=True):
        (mask,) = result.masks
        best = mask.candidates[0]
        assert best.token == colour, f"{thing}: {[c.token for c in mask.candidates]}"
        assert best.score > 0.5
        assert [c.score for c in mask.candidates] == sorted(
            (c.score for c in mask.candidates), reverse=True)
        assert result.filled == f"The {thing} is {colour}."
        assert best.sequence == result.filled
        assert len(mask.candidates) == 3


def test_scores_are_probabilities_over_the_vocabulary(planted_mlm: BertForMaskedLM,
                                                      tiny_tokenizer: Tokenizer) -> None:
    (result,) = fill_mask(planted_mlm, tiny_tokenizer, ["the sky is [MASK] ."], top_k=500)
    candidates = result.masks[0].candidates
    specials = set(tiny_tokenizer.all_special_ids)
    pieces = set(continuation_ids(tiny_tokenizer))
    assert pieces, "the vocabulary has ## pieces to leave out"
    assert not specials & {c.token_id for c in candidates}, "special tokens are never proposed"
    assert not pieces & {c.token_id for c in candidates}, "a whole-word blank gets no ## piece"
    assert len(candidates) == len(tiny_tokenizer) - len(specials) - len(pieces)
    # Every whole word's probability; the specials' and pieces' share is what is missing.
    assert 0.95 < sum(c.score for c in candidates) <= 1.0 + 1e-5


def test_several_masks_and_results_in_caller_order(planted_mlm: BertForMaskedLM,
                                                   tiny_tokenizer: Tokenizer) -> None:
    texts = ["the snow is [MASK] .", "the sky is [MASK] . the grass is [MASK] .",
             "the sun is [MASK] ."]
    results = fill_mask(planted_mlm, tiny_tokenizer, texts, top_k=2, batch_size=2)
    assert [r.text for r in results] == texts
    assert [len(r.masks) for r in results] == [1, 2, 1]
    middle = results[1]
    assert middle.masks[0].span[0] < middle.masks[1].span[0]
    assert middle.masks[0].candidates[0].token == "blue"
    assert middle.masks[1].candidates[0].token == "green"
    # one mask filled per candidate sequence, all masks in the text's filled version
    assert middle.masks[0].candidates[0].sequence == "the sky is blue . the grass is [MASK] ."
    assert middle.filled == "the sky is blue . the grass is green ."
    assert results[0].masks[0].candidates[0].token == "white"
    assert results[2].masks[0].candidates[0].token == "yellow"


def test_targets_are_scored_and_ranked(planted_mlm: BertForMaskedLM,
                                       tiny_tokenizer: Tokenizer) -> None:
    (free,) = fill_mask(planted_mlm, tiny_tokenizer, ["the sky is [MASK] ."], top_k=50)
    free_scores = {c.token: c.score for c in free.masks[0].candidates}
    (result,) = fill_mask(planted_mlm, tiny_tokenizer, ["the sky is [MASK] ."], top_k=1,
                          targets=["green", "blue", "cat"])
    candidates = result.masks[0].candidates
    assert candidates[0].token == "blue"
    assert {c.token for c in candidates} == {"green", "blue", "cat"}, "every target is returned"
    for c in candidates:
        assert c.target == c.token
        assert c.score == pytest.approx(free_scores[c.token], rel=1e-5)


def test_multi_piece_target_scores_its_first_piece(planted_mlm: BertForMaskedLM,
                                                   tiny_tokenizer: Tokenizer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        (result,) = fill_mask(planted_mlm, tiny_tokenizer, ["i like [MASK] ."],
                              targets=["playing"])
    (candidate,) = result.masks[0].candidates
    assert candidate.token == "play" and candidate.target == "playing"
    assert "first piece" in caplog.text and "playing" in caplog.text


def test_unknown_target_is_rejected(planted_mlm: BertForMaskedLM,
                                    tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(UsageError, match="'zebra' is not in the model's vocabulary"):
        fill_mask(planted_mlm, tiny_tokenizer, ["the sky is [MASK] ."], targets=["zebra"])


def test_continuation_pieces_never_glue_across_a_space(planted_mlm: BertForMaskedLM,
                                                        tiny_tokenizer: Tokenizer) -> None:
    # "play [MASK]" asks for a word: no ## piece at all (transformers' pipeline would show
    # "##ing" and decode the sequence as "i like playing ."). "play[MASK]" continues "play".
    spaced, attached = fill_mask(planted_mlm, tiny_tokenizer,
                                 ["i like play [MASK] .", "i like play[MASK] ."], top_k=500)
    assert not any(c.token.startswith("##") for c in spaced.masks[0].candidates)
    assert all(c.sequence.startswith("i like play ") for c in spaced.masks[0].candidates)
    by_token = {c.token: c for c in attached.masks[0].candidates}
    assert by_token["##ing"].word == "playing"
    assert by_token["##ing"].sequence == "i like playing ."
    assert by_token["cat"].sequence == "i like playcat ."


def test_whole_word_blanks_follow_the_text() -> None:
    # [CLS] a [MASK] , [MASK] b[MASK] [MASK][MASK] [SEP]
    text = "a [MASK] ,[MASK] b[MASK] [MASK][MASK]"
    ids = [1, 7, 4, 8, 4, 9, 4, 4, 4, 2]
    offsets = [(0, 0), (0, 1), (2, 8), (9, 10), (10, 16), (17, 18), (18, 24), (25, 31),
               (31, 37), (0, 0)]
    row = {"input_ids": ids, "offset_mapping": offsets}
    # after a space / after punctuation / against a word / after a space / against a mask
    assert _whole_word_blanks(text, row, 4) == [True, True, False, True, False]


def test_pieces_join_into_whole_words() -> None:
    # "i like play[MASK] ." with the candidate "##ing": the piece continues "play".
    text = "i like play[MASK] ."
    tokens = ["[CLS]", "i", "like", "play", "[MASK]", ".", "[SEP]"]
    offsets = [(0, 0), (0, 1), (2, 6), (7, 11), (11, 17), (18, 19), (0, 0)]
    special = {0, 6}
    assert _whole_word(text, tokens, offsets, special, 4, "##ing") == "playing"
    assert _fill(text, offsets, [(4, "##ing")]) == "i like playing ."
    text = "i like play [MASK] ."
    offsets = [(0, 0), (0, 1), (2, 6), (7, 11), (12, 18), (19, 20), (0, 0)]
    assert _whole_word(text, tokens, offsets, special, 4, "cats") == "cats"
    assert _fill(text, offsets, [(4, "cats")]) == "i like play cats ."
    # A mask followed by a continuation piece: "[MASK]##s" → the candidate plus "s".
    tokens = ["[CLS]", "[MASK]", "##s", "[SEP]"]
    offsets = [(0, 0), (0, 6), (6, 7), (0, 0)]
    assert _whole_word("[MASK]s", tokens, offsets, {0, 3}, 1, "cat") == "cats"


def test_text_without_mask_names_its_index(planted_mlm: BertForMaskedLM,
                                           tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(InputError, match=r"text 1 has no \[MASK\] token"):
        fill_mask(planted_mlm, tiny_tokenizer, ["the sky is [MASK] .", "the sky is blue ."])


def test_model_without_mlm_head_is_refused(encoder_dir: Path, tiny_encoder: BertModel,
                                           tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(CheckpointError, match="no masked-LM head"):
        load_fill_mask(encoder_dir)
    with pytest.raises(UsageError, match=r"masked-LM head.*BertModel"):
        fill_mask(tiny_encoder, tiny_tokenizer, ["the sky is [MASK] ."])


def test_long_text_is_refused_not_truncated(planted_mlm: BertForMaskedLM,
                                            tiny_tokenizer: Tokenizer) -> None:
    long_text = "the sky is [MASK] . " + "the cat sat on the mat . " * 10
    with pytest.raises(InputError, match=r"text 0 has \d+ tokens, which exceeds the model's 40"):
        fill_mask(planted_mlm, tiny_tokenizer, [long_text])
    (result,) = fill_mask(planted_mlm, tiny_tokenizer, [long_text], truncate=True)
    assert result.masks[0].candidates[0].token == "blue"


def test_loaded_checkpoint_matches_the_model(mlm_dir: Path, planted_mlm: BertForMaskedLM,
                                             tiny_tokenizer: Tokenizer) -> None:
    engine = load_fill_mask(mlm_dir, device="cpu")
    assert isinstance(engine, Engine) and isinstance(engine.model, BertForMaskedLM)
    (loaded,) = fill_mask(engine, None, ["the grass is [MASK] ."])
    (direct,) = fill_mask(planted_mlm, tiny_tokenizer, ["the grass is [MASK] ."])
    assert [c.token for c in loaded.masks[0].candidates] == \
        [c.token for c in direct.masks[0].candidates]
    torch.testing.assert_close(torch.tensor([c.score for c in loaded.masks[0].candidates]),
                               torch.tensor([c.score for c in direct.masks[0].candidates]))


def test_cli_fill_mask(mlm_dir: Path, encoder_dir: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", "--model", str(mlm_dir), "the sun is [MASK] .",
                 "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "the sun is yellow ." in out and "1. yellow" in out
    assert main(["fill-mask", "--model", str(mlm_dir), "the sky is [MASK] .", "--json",
                 "--targets", "green,blue"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert [c["token"] for c in record["masks"][0]["candidates"]] == ["blue", "green"]
    assert main(["fill-mask", "--model", str(encoder_dir), "the sky is [MASK] ."]) == 2
    assert "no masked-LM head" in capsys.readouterr().err
    assert main(["fill-mask", "--model", str(mlm_dir), "no mask here"]) == 2
    assert "text 0 has no [MASK]" in capsys.readouterr().err
