"""Head importance against finite differences, the pruning plan's rules, and ``bertkit prune``
end to end with its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertkit import BertConfig, BertForSequenceClassification, BertModel
from bertkit.analysis.pruning import head_importance, pruning_plan
from bertkit.cli import main
from bertkit.errors import UsageError
from tiny import tiny_config, word_tokenizer

WORDS = ["good", "bad", "film", "plot", "very", "not", "a", "."]
LABELS = {0: "neg", 1: "pos"}


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier")
    tokenizer = word_tokenizer(path, WORDS, 32)
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer), num_hidden_layers=3, id2label=LABELS)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    data = path / "task.csv"
    rows = ["a very good film .", "a bad plot .", "not good .", "very bad film", "good plot ."]
    labels = ["pos" if "good" in t and "not" not in t else "neg" for t in rows]
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in
                                             zip(rows, labels, strict=True)), encoding="utf-8")
    return path


def batch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 13, (4, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1, 0])}


def test_importance_is_the_mask_gradient_by_finite_differences():
    torch.manual_seed(1)
    config = tiny_config(20, num_hidden_layers=2, initializer_range=0.3)
    model = BertForSequenceClassification(config).double().eval()  # float64: exact slopes
    scores = head_importance(model, [batch()], normalize_layers=False)
    assert scores.shape == (2, 4) and not model.training

    def loss(layer: int, head: int, value: float) -> float:
        masks = torch.ones(2, 4, dtype=torch.float64)
        masks[layer, head] = value
        inputs = batch()
        labels = inputs.pop("labels")
        with torch.no_grad():  # the loss in float64 (bertkit's losses compute in float32)
            logits = model(**inputs, head_mask=masks).logits
        return float(torch.nn.functional.cross_entropy(logits, labels))
    eps = 1e-6
    for layer, head in [(0, 1), (1, 3)]:
        slope = (loss(layer, head, 1 + eps) - loss(layer, head, 1 - eps)) / (2 * eps)
        assert abs(slope) > 1e-4                          # a head that matters
        assert scores[layer, head] == pytest.approx(abs(slope), rel=1e-5)
    normed = head_importance(model, [batch()])
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-6)


def test_plan_removes_the_fraction_and_keeps_a_head_per_layer():
    importance = np.array([[0.1, 0.2, 0.9, 0.3], [0.5, 0.05, 0.6, 0.7], [0.01, 0.02, 0.03, 0.8]])
    assert pruning_plan(importance, 0.25) == {2: [0, 1, 2]}             # the 3 lowest of 12
    assert pruning_plan(importance, 0.4) == {0: [0], 1: [1], 2: [0, 1, 2]}  # round(4.8) = 5
    extreme = pruning_plan(importance, 0.99)
    assert all(len(heads) == 3 for heads in extreme.values())          # the best one stays
    assert extreme == {0: [0, 1, 3], 1: [0, 1, 2], 2: [0, 1, 2]}
    already = importance.copy()
    already[2, :3] = np.nan                                             # pruned before
    assert pruning_plan(already, 0.25) == {}                             # 3 of 12 are gone
    for bad in (0, 1, 1.0, -0.2, 1.5, True, "0.3"):
        with pytest.raises(UsageError, match="strictly between 0 and 1"):
            pruning_plan(importance, bad)


def test_prune_cli_writes_a_smaller_model_that_loads(classifier_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(classifier_dir), "--task-data",
                 str(classifier_dir / "task.csv"), "--fraction", "0.25", "--out", str(out)]) == 0
    summary = json.loads((out / "importance.json").read_text())
    assert summary["heads_removed"] == 3 and summary["heads_total"] == 12
    config = BertConfig.from_pretrained(out)
    assert {str(k): v for k, v in config.pruned_heads.items()} == summary["pruned_heads"]
    model = BertForSequenceClassification.from_pretrained(out)
    assert sum(layer.attention.num_heads for layer in model.bert.layers) == 9
    assert "removed 3 of 12 heads" in capsys.readouterr().out


def test_prune_refuses_a_model_without_a_task_head(classifier_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    BertModel(BertConfig.from_pretrained(classifier_dir)).save_pretrained(bare)
    for name in ("vocab.txt", "tokenizer_config.json"):
        if (classifier_dir / name).exists():
            (bare / name).write_bytes((classifier_dir / name).read_bytes())
    assert main(["prune", "--model", str(bare), "--task-data", str(classifier_dir / "task.csv"),
                 "--fraction", "0.3", "--out", str(tmp_path / "o")]) == 2
    assert "no task head to prune for" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("fraction", ["0", "1", "1.2", "-0.1"])
def test_prune_refuses_a_fraction_outside_0_1(classifier_dir, tmp_path, capsys, fraction):
    assert main(["prune", "--model", str(classifier_dir), "--task-data",
                 str(classifier_dir / "task.csv"), "--fraction", fraction,
                 "--out", str(tmp_path / "o")]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err
