"""Head statistics: the target masks, the streamed means against a direct loop over the
attention maps, pruned heads as NaN, the report files, and bad text files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertkit import BertModel
from bertkit.analysis.heads import TARGETS, head_statistics, read_sentences, target_masks
from bertkit.cli import main
from bertkit.errors import DataFormatError
from bertkit.inference.attention_maps import viz_available
from bertkit.inference.engine import Engine
from tiny import tiny_config, word_tokenizer

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", ".", ",", "un", "##like",
         "##ly", "a"]
SENTENCES = ["the cat sat on the mat .", "the dog ran far , unlikely .", "a cat , a dog .",
             "the mat"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("heads-model")
    tokenizer = word_tokenizer(path, WORDS, 32)
    torch.manual_seed(0)
    BertModel(tiny_config(len(tokenizer), num_attention_heads=4)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_target_masks_mark_the_right_keys(model_dir):
    engine = Engine.from_pretrained(model_dir, batch_size=8)
    tokenizer = engine.tokenizer
    rows = engine.encode(["the cat , unlikely the", "a"], word_ids=True)
    batch = next(engine.batches(rows))
    tokens = tokenizer.convert_ids_to_tokens(rows[0]["input_ids"])
    assert tokens == ["[CLS]", "the", "cat", ",", "un", "##like", "##ly", "the", "[SEP]"]
    punctuation = torch.tensor([t in {".", ","} for t in
                                tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))])
    masks = target_masks(batch, tokenizer.cls_token_id, tokenizer.sep_token_id, punctuation)
    where = {name: [tuple(ij) for ij in mask[0].nonzero().tolist()] for name, mask in masks.items()}
    assert where["previous"] == [(i, i - 1) for i in range(1, 9)]
    assert where["next"] == [(i, i + 1) for i in range(8)]
    assert where["same_word"] == [(4, 5), (4, 6), (5, 4), (5, 6), (6, 4), (6, 5)]
    assert where["repeated"] == [(7, 1)]                  # the second "the" sees the first
    assert {j for _, j in where["punctuation"]} == {3}
    assert {j for _, j in where["sep"]} == {8}
    # the short row: keys past its end are padding and never targets
    assert masks["next"][1].nonzero().tolist() == [[0, 1], [1, 2]]


def test_streamed_means_equal_a_direct_loop(model_dir):
    engine = Engine.from_pretrained(model_dir, batch_size=2)   # several padded batches
    stats = head_statistics(engine, SENTENCES)
    tokenizer = engine.tokenizer
    sums = {"previous": 0.0, "cls": 0.0, "entropy": 0.0, "top_next": 0.0}
    count = 0
    with torch.inference_mode():
        for text in SENTENCES:                             # one at a time: no padding at all
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            probs = engine.model.bert(ids, output_attentions=True).attentions[1][0, 2]  # (T, T)
            T = ids.shape[1]
            sums["cls"] += float(probs[:, 0].sum())
            sums["entropy"] += float(-(probs * probs.log()).sum())
            sums["previous"] += sum(float(probs[i, i - 1]) for i in range(1, T))
            sums["top_next"] += sum(int(probs[i].argmax()) == i + 1 for i in range(T - 1))
            count += T
    n = len(SENTENCES)
    assert stats.tokens == count and stats.sentences == n
    assert stats.attention["cls"][1, 2] == pytest.approx(sums["cls"] / count, abs=1e-5)
    assert stats.entropy[1, 2] == pytest.approx(sums["entropy"] / count, abs=1e-5)
    assert stats.attention["previous"][1, 2] == pytest.approx(sums["previous"] / (count - n),
                                                              abs=1e-5)
    assert stats.top["next"][1, 2] == pytest.approx(sums["top_next"] / (count - n), abs=1e-9)
    best = stats.best_heads("next", k=8)
    assert [score for *_, score in best] == sorted((s for *_, s in best), reverse=True)


def test_pruned_heads_are_nan_and_the_rest_unchanged(model_dir, tmp_path):
    engine = Engine.from_pretrained(model_dir)
    before = head_statistics(engine, SENTENCES)
    model = BertModel.from_pretrained(model_dir)
    model.prune_heads({1: [0, 3]})
    model.save_pretrained(tmp_path)
    engine.tokenizer.save_pretrained(tmp_path)
    after = head_statistics(Engine.from_pretrained(tmp_path), SENTENCES)
    assert np.isnan(after.attention["self"][1, [0, 3]]).all()
    np.testing.assert_allclose(after.attention["self"][0], before.attention["self"][0],
                               atol=1e-5)  # layer 0 is untouched by pruning layer 1
    assert after.to_json()["attention"]["self"][1][0] is None


def test_report_files_and_the_cli(model_dir, tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")
    assert main(["heads", "--model", str(model_dir), "--text", str(text),
                 "--out", str(tmp_path / "out")]) == 0
    table = json.loads((tmp_path / "out" / "heads.json").read_text())
    assert set(table["attention"]) == set(TARGETS) and len(table["entropy"]) == 2
    assert table["sentences"] == len(SENTENCES)
    page = (tmp_path / "out" / "heads.html").read_text()
    assert "mean attention to [CLS]" in page and page.count("<table>") == 2 * len(TARGETS) + 1
    assert "top attention = previous" in capsys.readouterr().out
    pngs = sorted((tmp_path / "out").glob("*.png"))
    if viz_available():
        assert len(pngs) == 2 * len(TARGETS) + 1
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    else:
        assert not pngs


def test_a_text_file_without_usable_sentences(model_dir, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"blank\.txt.*no non-blank line"):
        read_sentences(blank)
    short = tmp_path / "short.txt"
    short.write_text(".\ncat\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no usable sentences: none has 2 or more"):
        head_statistics(Engine.from_pretrained(model_dir), read_sentences(short),
                        source=str(short))
    assert main(["heads", "--model", str(model_dir), "--text", str(blank),
                 "--out", str(tmp_path / "o")]) == 2


def test_demo_section_renders_from_the_summary_alone(model_dir, tmp_path):
    from bertkit.demo.heads_section import heads_section_html, heads_summary, plot_heads_section

    part = json.loads(json.dumps(heads_summary(Engine.from_pretrained(model_dir), SENTENCES,
                                               max_sentences=3)))  # as summary.json holds it
    assert part["sentences"] == 3
    page = heads_section_html(part, '<img src="heads.png">')
    assert '<img src="heads.png">' in page and "previous token: layer" in page
    cls = np.mean([v for layer in part["attention"]["cls"] for v in layer])
    assert f"gives {cls:.2f} of its attention to [CLS]" in page
    pytest.importorskip("matplotlib")
    plot_heads_section(part, tmp_path / "heads.png")
    assert (tmp_path / "heads.png").read_bytes()[:4] == b"\x89PNG"
