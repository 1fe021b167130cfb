"""The demo's pretraining step: a small BERT (bert-tiny's shape) pretrained with MLM + NSP on
the Reuters corpus for as many steps as its share of the time allows."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bertkit.data.batch import Batch
from bertkit.data.masking import IGNORE_INDEX
from bertkit.demo.budget import MIN_STEP_SECONDS, seconds_per_step
from bertkit.demo.run import DemoRun
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForPreTraining
from bertkit.objectives import PreTrainingObjective
from bertkit.runs.pretrain import PretrainSettings, load_tokenizer, model_config, pretrain

#: The small BERT: bert-tiny's shape (2 layers, hidden 128, 2 heads) without dropout — a run of
#: minutes sees each sequence about once, so there is nothing to regularise against.
SMALL_MODEL = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
SEQ_LEN, PRETRAIN_BATCH, PRETRAIN_LR = 128, 16, 1.5e-3


def pretrain_small_bert(run: DemoRun) -> str:
    tokenizer_dir = Path(run.summary["tokenizer"]["path"])
    seq_len = run.settings.pretrain_seq_len or SEQ_LEN
    settings = PretrainSettings(
        corpus=[run.summary["data"]["corpus"]["path"]], output_dir=run.out / "pretrain",
        tokenizer=tokenizer_dir, preset="bert_tiny", model_overrides=dict(SMALL_MODEL),
        regime="bert", seq_len=seq_len, batch_size=PRETRAIN_BATCH, dupe_factor=3,
        eval_fraction=0.02, eval_max_examples=256, learning_rate=PRETRAIN_LR,
        **run.settings.run_options())
    config = model_config(settings, load_tokenizer(tokenizer_dir))
    model = BertForPreTraining(config)  # for its size and the step timing only
    batch = _synthetic_pretraining_batch(config, seq_len, torch.Generator().manual_seed(0))
    step_s = seconds_per_step(PreTrainingObjective(model), lambda m: m(batch)[0])
    budget = max(MIN_STEP_SECONDS, run.clock.allot("pretrain"))
    # Generous on purpose: the trainer's time budget is the hard stop, while too few planned
    # steps (the timing caught a busy moment) would end the run early and waste its budget.
    fixed = run.settings.pretrain_steps  # exactly this many steps, no time stop
    planned = fixed or max(20, int(1.25 * budget / step_s))
    settings.max_steps, settings.max_minutes = planned, None if fixed else budget / 60
    settings.warmup_steps = min(200, planned // 10)
    settings.eval_every = max(5, planned // 8)
    settings.log_every = max(1, planned // 100)
    shards = run.out / "pretrain" / "data"
    before = {p.name for p in shards.iterdir()} if shards.is_dir() else set()
    result = pretrain(settings)
    if result.stop_reason == "interrupted":  # Ctrl-C: the trainer saved and returned; stop here
        raise KeyboardInterrupt
    reused = bool(before & {p.name for p in shards.iterdir()})
    params = model.num_parameters()
    run.summary["pretrain"] = {
        "model": {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
                  "heads": config.num_attention_heads, "vocab": config.vocab_size,
                  "parameters": params},
        "seq_len": seq_len, "batch_size": PRETRAIN_BATCH, "learning_rate": PRETRAIN_LR,
        "budget_seconds": round(budget, 1), "seconds_per_step_estimate": round(step_s, 4),
        "planned_steps": planned, "steps": result.step, "stop_reason": result.stop_reason,
        "train_examples": result.train_examples, "eval_examples": result.eval_examples,
        "shards_cached": reused, "eval": result.eval, "history": result.history,
        "train_log": _train_log(run.out / "pretrain" / "metrics.jsonl"),
    }
    final = result.eval or {}
    return (f"{result.step:,} steps of {PRETRAIN_BATCH}×{seq_len} tokens "
            f"({result.stop_reason.replace('_', ' ')}); shards {'cached' if reused else 'built'}; "
            f"held-out MLM accuracy {final.get('mlm_accuracy', float('nan')):.3f} "
            f"vs unigram {final.get('unigram_baseline', float('nan')):.3f}, content tokens "
            f"{final.get('content_accuracy', float('nan')):.3f}, "
            f"NSP accuracy {final.get('nsp_accuracy', float('nan')):.3f}")


def _train_log(path: Path) -> list[dict[str, float]]:
    """The trainer's logged training records (step, loss, MLM and NSP loss)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            records.append({k: record[k] for k in ("step", "loss", "mlm_loss", "nsp_loss")
                            if k in record})
    return records


def _synthetic_pretraining_batch(config: BertConfig, seq_len: int,
                                 generator: torch.Generator) -> Batch:
    """A batch of the pretraining shape (15 % of positions labelled, NSP labels) for timing."""
    shape = (PRETRAIN_BATCH, seq_len)
    ids = torch.randint(5, config.vocab_size, shape, generator=generator)
    labels = torch.where(torch.rand(shape, generator=generator) < 0.15, ids,
                         torch.full(shape, IGNORE_INDEX))
    types = (torch.arange(seq_len) >= seq_len // 2).long().expand(shape)
    return Batch(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids),
                 mlm_labels=labels,
                 next_sentence_labels=torch.randint(0, 2, (PRETRAIN_BATCH,), generator=generator))
