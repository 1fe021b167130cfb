"""A from-scratch pretraining run starts its masked-LM output bias at the training targets' log
frequencies (``mlm_bias_init="unigram"``, the default), so its first held-out loss is the
unigram cross-entropy instead of ln V; ``"zeros"`` keeps BERT's init."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import Tensor

from bertkit.errors import ConfigError
from bertkit.model.pretrained import RobertaForMaskedLM
from bertkit.runs.pretrain import PretrainSettings, load_tokenizer, pretrain
from bertkit.runs.pretrain_data import unigram_log_prior

TINY = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 64, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}


def test_prior_is_smoothed_log_frequency_with_specials_at_the_floor(tokenizer_dir: Path
                                                                   ) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    special = set(tokenizer.all_special_ids)
    common, rare, unseen = [i for i in range(tokenizer.vocab_size) if i not in special][:3]
    cls = int(tokenizer.cls_token_id)  # type: ignore[arg-type]
    counts = Counter({common: 9, rare: 3, cls: 500})  # packed sequences count [CLS] too

    prior = unigram_log_prior(counts, tokenizer)

    assert prior.shape == (tokenizer.vocab_size,) and prior.dtype == torch.float32
    assert abs(float(prior.mean())) < 1e-5  # softmax ignores the shift; 0 keeps it small
    assert float(prior[common] - prior[rare]) == pytest.approx(math.log(10 / 4), abs=1e-5)
    assert float(prior[rare] - prior[unseen]) == pytest.approx(math.log(4 / 1), abs=1e-5)
    assert float(prior[cls]) == pytest.approx(float(prior[unseen]))  # never a masked target


def _first_step(corpus: Path, tokenizer: Path, out: Path, init: str) -> tuple[float, Tensor]:
    """Held-out MLM loss and the saved output bias after one step at a negligible learning
    rate: the run's starting point."""
    result = pretrain(PretrainSettings(
        corpus=[corpus], output_dir=out, tokenizer=tokenizer, model_overrides=TINY,
        regime="roberta", seq_len=32, batch_size=8, max_steps=1, learning_rate=1e-12,
        warmup_steps=0, eval_fraction=0.1, eval_max_examples=64, progress=False,
        device="cpu", seed=0, mlm_bias_init=init))
    assert result.eval is not None
    return result.eval["mlm_loss"], RobertaForMaskedLM.from_pretrained(out).mlm.bias.detach()


def test_run_starts_at_the_unigram_loss_and_zeros_keeps_ln_v(
        small_corpus: Path, tokenizer_dir: Path, tmp_path: Path, one_thread: None) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    ln_v = math.log(tokenizer.vocab_size)
    zeros_loss, zeros_bias = _first_step(small_corpus, tokenizer_dir, tmp_path / "z", "zeros")
    prior_loss, prior_bias = _first_step(small_corpus, tokenizer_dir, tmp_path / "u", "unigram")

    assert float(zeros_bias.abs().max()) < 1e-9  # one Adam step of 1e-12 from 0
    print(f"held-out loss at the start: zeros {zeros_loss:.3f} (ln V {ln_v:.3f}), unigram "
          f"{prior_loss:.3f}")
    assert abs(zeros_loss - ln_v) < 0.3, (zeros_loss, ln_v)  # random logits: ≈ uniform
    # The corpus's own piece counts, taken independently of the run's data code: the bias
    # ranks its most frequent piece first, and the starting loss is the unigram entropy (the
    # held-out 10 % of documents add a little: measured 6.22 against 6.00, ln V 6.91).
    text = small_corpus.read_text(encoding="utf-8")
    pieces = Counter(tokenizer.encode(text, add_special_tokens=False))
    assert int(prior_bias.argmax()) == pieces.most_common(1)[0][0]
    total = sum(pieces.values())
    entropy = -sum(n / total * math.log(n / total) for n in pieces.values())
    assert prior_loss < entropy + 0.4 < zeros_loss - 0.5, (prior_loss, entropy, zeros_loss)

def test_unknown_bias_init_is_named(small_corpus: Path, tokenizer_dir: Path,
                                    tmp_path: Path) -> None:
    settings = PretrainSettings(corpus=[small_corpus], output_dir=tmp_path, tokenizer=tokenizer_dir,
                                mlm_bias_init="frequency")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mlm_bias_init must be one of unigram, zeros"):
        settings.validate()
