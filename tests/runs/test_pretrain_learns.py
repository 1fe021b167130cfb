"""It learns, on CPU, in CI: a tiny BERT pretrained for a fixed small budget on real text must
predict held-out masked tokens far better than the unigram baseline (always guessing the most
frequent masked token), and its training loss must fall. Either fails if learning breaks: with
a learning rate of 0 the accuracy is near 0 and the loss flat (checked by hand, see the report).
"""

from __future__ import annotations

import json
from pathlib import Path

from bertkit.runs.pretrain import PretrainSettings, pretrain

TINY = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
        "intermediate_size": 256, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}


def test_tiny_bert_learns_far_above_unigram_baseline(reuters_corpus: Path, tokenizer_dir: Path,
                                                     tmp_path: Path, one_thread: None) -> None:
    settings = PretrainSettings(
        corpus=[reuters_corpus], output_dir=tmp_path / "run", tokenizer=tokenizer_dir,
        model_overrides=TINY, regime="roberta", seq_len=64, batch_size=32, max_steps=400,
        learning_rate=4e-3, warmup_steps=20, eval_every=200, eval_fraction=0.1,
        log_every=10, progress=False, device="cpu", seed=0)
    result = pretrain(settings)

    assert result.step == 400
    final = result.eval
    assert final is not None and final["step"] == 400
    baseline = final["unigram_baseline"]
    print(f"held-out MLM accuracy {final['mlm_accuracy']:.4f} vs unigram baseline "
          f"{baseline:.4f} ({result.eval_examples} held-out sequences); perplexity "
          f"{final['perplexity']:.1f}")
    # Measured at 400 steps: 0.115 vs 0.043 (0.084 already at step 100); with the output bias
    # started at zero instead of the unigram prior, 0.094 (0.044 at step 100). A model that
    # does not learn scores ~0.00 (lr≈0: measured 0.000, loss flat at 6.92) or the baseline.
    assert final["mlm_accuracy"] > 1.5 * baseline
    assert final["mlm_accuracy"] > baseline + 0.015

    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    losses = [r["loss"] for r in records if r.get("kind") == "train"]
    assert len(losses) == 40
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    # The run starts at the unigram loss (the prior bias), so what falls is context learned:
    # measured 6.07 → 5.63 (from a zero bias: 6.45 → 5.81).
    assert last < first - 0.3, f"training loss did not fall: {first:.3f} → {last:.3f}"
    evals = [r for r in records if r.get("kind") == "pretrain_eval"]
    assert [r["step"] for r in evals] == [200, 400]
