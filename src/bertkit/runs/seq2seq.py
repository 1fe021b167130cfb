"""The sequence-to-sequence run driver: source–target pair files + an encoder–decoder (warm-
started from BERT checkpoints or randomly initialised at the same size) → a trained model
directory, on the ONE generic :class:`~bertkit.training.Trainer`.

What the run adds around the loop: teacher forcing with label smoothing and a padding-aware
loss (:mod:`bertkit.tasks.translation`), a held-out loss every ``eval_every`` steps, and at the
end the dev set *translated* and scored with sacreBLEU (BLEU, chrF) beside the copy-the-source
baseline. Everything the trainer gives every bertkit run comes with it: bf16 autocast,
gradient accumulation, exact resume (``resume=True``), torchrun DDP, step and time budgets, the
progress line, checkpoints.

Warm start (Rothe, Narayan & Severyn 2020):
:meth:`EncoderDecoderModel.from_encoder_decoder_pretrained` builds both halves from BERT
checkpoints (the cross-attention starts random and is named in the load report);
``share=True`` is their BERTShare (decoder weights tied to the encoder's). ``random=True``
builds the same architecture from the encoder checkpoint's config only, with fresh weights —
the baseline that tells what the pretrained weights are worth.

Output directory::

    OUT/config.json, model.safetensors   the model (EncoderDecoderModel.from_pretrained)
    OUT/tokenizer.json, vocab.txt, …     the tokenizer (sources and targets share it)
    OUT/seq2seq.json                     the run's settings (checked on resume)
    OUT/metrics.jsonl                    training records and held-out evaluations
    OUT/checkpoints/step-XXXXXXXX/       resumable training state (the trainer's)
    OUT/final_metrics.json               dev BLEU / chrF (with signatures) and the baseline
    OUT/predictions.jsonl                the dev translations
    OUT/provenance.json                  SHA-256 of every other file (written last)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bertkit import _fileio
from bertkit.checkpoints.provenance import write_manifest
from bertkit.data.readers import TextPair, read_pairs
from bertkit.errors import CheckpointError, ConfigError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from bertkit.tasks.metrics.translation import copy_source_baseline
from bertkit.tasks.runfiles import require_model_dir, write_jsonl
from bertkit.tasks.translation import (
    MAX_NEW_TOKENS,
    collate_seq2seq,
    evaluate_translations,
    seq2seq_features,
    seq2seq_loss,
)
from bertkit.tokenization import Tokenizer
from bertkit.training import ResumableLoader, TrainConfig, Trainer, distributed
from bertkit.training.batches import LOSS_ITEMS_METRIC, TOKENS_METRIC
from bertkit.training.device import resolve_device
from bertkit.training.rng import seed_everything
from bertkit.training.settings import TRAINING_RENAMED, TrainSettings, accepts_old_names

__all__ = ["Seq2SeqResult", "Seq2SeqSettings", "build_seq2seq_model", "evaluate_seq2seq",
           "load_seq2seq", "train_seq2seq"]

logger = logging.getLogger(__name__)

RUN_FILE = "seq2seq.json"
FINAL_METRICS = "final_metrics.json"
PREDICTIONS = "predictions.jsonl"
#: Settings that decide the data, the model or the optimisation; a resumed run must keep them.
_RESUME_FIELDS = ("train", "source_field", "target_field", "encoder", "decoder", "random",
                  "share", "max_source_length", "max_target_length", "batch_size",
                  "grad_accum_steps", "learning_rate", "warmup_steps", "weight_decay",
                  "label_smoothing", "precision", "seed")


@accepts_old_names
@dataclass(kw_only=True)
class Seq2SeqSettings(TrainSettings):
    """One seq2seq run: the shared training settings
    (:class:`~bertkit.training.settings.TrainSettings`) plus the pairs and the models.
    ``encoder`` is a BERT checkpoint directory (its tokenizer is used for both sides);
    ``decoder`` defaults to the same checkpoint. Defaults follow Rothe et al.'s BERT2BERT
    recipe scaled to a CPU (their lr 0.05 with Adafactor becomes AdamW 5e-5 and warmup; label
    smoothing 0.1 as in the Transformer). ``grad_accum`` and ``num_threads`` are the old names
    of ``grad_accum_steps`` and ``threads`` (accepted, with a warning, for one release)."""

    renamed: ClassVar[Mapping[str, str]] = TRAINING_RENAMED

    train: str | Path
    output_dir: str | Path = field()  # required (field(): not the inherited None)
    encoder: str | Path
    decoder: str | Path | None = None
    dev: str | Path | None = None
    random: bool = False
    share: bool = False
    source_field: str = "source"
    target_field: str = "target"
    max_source_length: int = 64
    max_target_length: int = 48
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    eval_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int | None = 2
    log_every: int = 10
    progress: bool = True
    num_beams: int = 1  # for the final dev translations
    max_new_tokens: int = MAX_NEW_TOKENS
    eval_translations: int | None = None  # translate at most this many dev pairs (None: all)

    def validate(self) -> Seq2SeqSettings:
        def fail(name: str, expected: str) -> None:
            raise ConfigError(f"Seq2SeqSettings.{name} must be {expected}, got "
                              f"{getattr(self, name)!r}")
        for name in ("max_source_length", "max_target_length", "batch_size", "grad_accum_steps",
                     "max_steps", "num_beams", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(name, "an integer >= 1")
        if not 0 <= self.label_smoothing < 1:
            fail("label_smoothing", "in [0, 1)")
        if self.share and self.random:
            fail("share", "False with random=True (BERTShare ties pretrained weights)")
        if self.eval_translations is not None and self.eval_translations < 1:
            fail("eval_translations", "an integer >= 1 (or None)")
        return self


@dataclass
class Seq2SeqResult:
    """Where the run lives and how it ended."""

    output_dir: Path
    step: int
    stop_reason: str
    checkpoint: Path | None
    train_pairs: int
    train_losses: list[float] = field(default_factory=list)  # this invocation's step losses
    eval_history: list[dict[str, float]] = field(default_factory=list)
    final_metrics: dict[str, Any] | None = None
    new_weights: list[str] = field(default_factory=list)  # weights not from a checkpoint


# --------------------------------------------------------------------------- the model


def build_seq2seq_model(encoder: str | Path, decoder: str | Path | None = None, *,
                        tokenizer: Tokenizer, random: bool = False, share: bool = False
                        ) -> tuple[EncoderDecoderModel, list[str]]:
    """The encoder–decoder to train and the names of its weights that start random.

    Warm start loads both checkpoints; ``random`` takes only the encoder checkpoint's config
    (the decoder gets the same size plus causal self-attention and cross-attention). The
    special tokens come from ``tokenizer``: ``[CLS]`` starts the decoder, ``[SEP]`` ends a
    translation. Call with the seed set: random weights are drawn here.
    """
    ids = {"decoder_start_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
    if random:
        config = BertConfig.from_pretrained(encoder)
        decoder_config = dataclasses.replace(config, is_decoder=True, add_cross_attention=True)
        model = EncoderDecoderModel(EncoderDecoderConfig(config, decoder_config, **ids))
        return model, sorted(name for name, _ in model.named_parameters())
    model, report = EncoderDecoderModel.from_encoder_decoder_pretrained(
        encoder, decoder or encoder, share_encoder_decoder=share, output_loading_info=True,
        **ids)
    return model, list(report.new)


def _check_vocabulary(tokenizer: Tokenizer, model: EncoderDecoderModel,
                      decoder_dir: Path | None) -> None:
    """Targets are token ids of ``tokenizer``: its vocabulary must be the decoder's."""
    if decoder_dir is not None and ((decoder_dir / "tokenizer.json").is_file()
                                    or (decoder_dir / "vocab.txt").is_file()):
        other = Tokenizer.from_pretrained(decoder_dir)
        if other.get_vocab() != tokenizer.get_vocab():
            raise UsageError(f"the decoder checkpoint {decoder_dir} has another vocabulary "
                             f"({other.vocab_size} tokens) than the encoder's tokenizer "
                             f"({tokenizer.vocab_size}); targets must be tokenised with the "
                             "decoder's vocabulary: use checkpoints that share one")
    for half, config in (("encoder", model.config.encoder), ("decoder", model.config.decoder)):
        if tokenizer.vocab_size > config.vocab_size:
            raise UsageError(f"the tokenizer has {tokenizer.vocab_size} tokens but the "
                             f"{half} only {config.vocab_size} embeddings")


def _check_lengths(settings: Seq2SeqSettings, model: EncoderDecoderModel,
                   translating: bool) -> None:
    """The length settings fit the model's positions — checked before training, so a run
    never trains for an hour to fail at its dev translations."""
    encoder = model.config.encoder.max_position_embeddings
    decoder = model.config.decoder.max_position_embeddings
    needs = [("max_source_length", settings.max_source_length, "source tokens", "encoder",
              encoder),
             ("max_target_length", settings.max_target_length, "target tokens (the decoder "
              "reads the start token and all but the last)", "decoder", decoder)]
    if translating:
        needs.append(("max_new_tokens", settings.max_new_tokens + 1, "decoder positions for "
                      "the dev translations (with the start token)", "decoder", decoder))
    for name, count, what, half, positions in needs:
        if count > positions:
            raise UsageError(f"{name}={getattr(settings, name)} needs {count} {what}, but the "
                             f"{half} has {positions} positions (max_position_embeddings); "
                             f"lower {name} to at most "
                             f"{positions - (count - getattr(settings, name))}")


# --------------------------------------------------------------------------- the run


def _read(path: str | Path, settings: Seq2SeqSettings) -> list[TextPair]:
    return read_pairs(path, source_field=settings.source_field,
                      target_field=settings.target_field)


def _check_resume(out: Path, recorded: dict[str, Any]) -> None:
    path = out / RUN_FILE
    if not path.is_file():
        raise UsageError(f"--resume: {out} holds no {RUN_FILE}; it is not a bertkit seq2seq "
                         "run (start a fresh run without --resume)")
    before = Seq2SeqSettings.upgrade_recorded(_fileio.read_json(path).get("settings", {}))
    for key in _RESUME_FIELDS:
        if before.get(key) != recorded[key]:
            raise CheckpointError(f"--resume: the run in {out} was made with {key}="
                                  f"{before.get(key)!r}, this run has {key}={recorded[key]!r}; "
                                  "keep the data and model settings to resume")


def train_seq2seq(settings: Seq2SeqSettings, *, resume: bool = False) -> Seq2SeqResult:
    """Train an encoder–decoder on ``settings.train`` pairs; returns when a budget is spent or
    on Ctrl-C, after saving the model, scoring the dev set and writing the manifest.

    Raises:
        BertkitError subclasses: bad pair files (file:line), a vocabulary that does not fit
        the decoder, a resume into another configuration.
    """
    settings.validate()
    settings.apply_threads()
    out = Path(settings.output_dir)
    recorded = _fileio.json_ready(dataclasses.asdict(settings))
    if resume:
        _check_resume(out, recorded)
    train_pairs = _read(settings.train, settings)
    dev_pairs = _read(settings.dev, settings) if settings.dev is not None else []
    tokenizer = Tokenizer.from_pretrained(settings.encoder)
    limits = {"max_source_length": settings.max_source_length,
              "max_target_length": settings.max_target_length}
    train = seq2seq_features(tokenizer, train_pairs, **limits)
    dev = seq2seq_features(tokenizer, dev_pairs, **limits) if dev_pairs else None

    def collate(indices: list[int], features: Any = train) -> dict[str, torch.Tensor]:
        return collate_seq2seq(features, indices, pad_id=tokenizer.pad_token_id,
                               start_id=tokenizer.cls_token_id)

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        labels = batch["labels"]
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss, nll = seq2seq_loss(logits, labels, label_smoothing=settings.label_smoothing)
        targets = (labels != -100).sum()  # the loss is their mean: weigh micro-batches by it
        return loss, {"nll": nll, TOKENS_METRIC: targets, LOSS_ITEMS_METRIC: targets}

    with distributed(settings.device) as ctx:
        seed_everything(settings.seed)  # the random weights (cross-attention at least)
        model, new_weights = build_seq2seq_model(
            settings.encoder, settings.decoder, tokenizer=tokenizer, random=settings.random,
            share=settings.share)
        _check_vocabulary(tokenizer, model, Path(settings.decoder) if settings.decoder else None)
        _check_lengths(settings, model, translating=bool(dev_pairs))
        model.train()
        loader = ResumableLoader(range(len(train.sources)), settings.batch_size,
                                 collate_fn=collate, seed=settings.seed,
                                 drop_last=len(train.sources) >= settings.batch_size)
        eval_batches = None
        if dev is not None and settings.eval_every:
            eval_batches = [collate(list(range(i, min(i + settings.batch_size,
                                                      len(dev.sources)))), dev)
                            for i in range(0, len(dev.sources), settings.batch_size)]
        config = TrainConfig(
            **{**settings.shared(), "output_dir": out},
            eval_every=settings.eval_every if eval_batches else 0,
            checkpoint_every=settings.checkpoint_every,
            keep_checkpoints=settings.keep_checkpoints, log_every=settings.log_every,
            # BERTShare: tied weights get gradients once; a decoder pooler gets none
            ddp_find_unused_parameters=True)
        trainer = Trainer(model, loss_fn, loader, config, eval_data=eval_batches, dist=ctx)
        losses: list[float] = []
        history: list[dict[str, float]] = []
        trainer.add_callback("on_step_end",
                             lambda t, info: losses.append(float(info["loss"])))
        trainer.add_callback("on_eval_end", lambda t, info: history.append(
            {"step": info["step"], **info["metrics"]}))
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            _fileio.write_json(out / RUN_FILE, {"settings": recorded,
                                                "model_config": model.config.to_dict(),
                                                "new_weights": new_weights,
                                                "train_pairs": len(train_pairs),
                                                "truncated_sources": train.truncated_sources,
                                                "truncated_targets": train.truncated_targets})
        result = trainer.fit(resume=resume)
        final = None
        if ctx.is_main:
            model.to("cpu").eval()
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            if dev_pairs:
                final = _score_dev(model, tokenizer, dev_pairs, settings, out)
            write_manifest(out, seed=settings.seed, training_data=[settings.train],
                           extra={"task": "seq2seq", "random_init": settings.random,
                                  "share": settings.share, "step": result.step})
    return Seq2SeqResult(out, result.step, result.stop_reason, result.checkpoint,
                         len(train_pairs), losses, history, final, new_weights)


def _score_dev(model: EncoderDecoderModel, tokenizer: Tokenizer, pairs: list[TextPair],
               settings: Seq2SeqSettings, out: Path) -> dict[str, Any]:
    """Translate (at most ``eval_translations``) dev pairs, score them and the copy baseline,
    write ``final_metrics.json`` and ``predictions.jsonl``."""
    pairs = pairs[:settings.eval_translations] if settings.eval_translations else pairs
    scores, records = evaluate_translations(
        model, tokenizer, pairs, max_source_length=settings.max_source_length,
        max_new_tokens=settings.max_new_tokens, num_beams=settings.num_beams)
    lowercase = "case:lc" in scores.bleu_signature
    baseline = copy_source_baseline([p.source for p in pairs], [p.target for p in pairs],
                                    lowercase=lowercase)
    final = {**scores.to_dict(), "copy_baseline": baseline.to_dict(),
             "num_beams": settings.num_beams}
    _fileio.write_json(out / FINAL_METRICS, final)
    write_jsonl(out / PREDICTIONS, records)
    return final


# --------------------------------------------------------------------------- trained models


def load_seq2seq(model_dir: str | Path, *, device: str = "auto"
                 ) -> tuple[EncoderDecoderModel, Tokenizer, torch.device]:
    """A saved encoder–decoder (a run directory or any ``EncoderDecoderModel`` folder), its
    tokenizer and the device it was put on, in eval mode."""
    directory = require_model_dir(model_dir)
    target = resolve_device(device)
    model = EncoderDecoderModel.from_pretrained(directory).to(target).eval()
    return model, Tokenizer.from_pretrained(directory), target


def evaluate_seq2seq(model_dir: str | Path, pairs: str | Path, *,
                     out: str | Path | None = None, source_field: str = "source",
                     target_field: str = "target", limit: int | None = None,
                     device: str = "auto", **options: Any) -> dict[str, Any]:
    """Translate the sources of a pair file, score BLEU / chrF against its targets and the
    copy-the-source baseline; with ``out``, write ``scores.json`` and
    ``predictions.jsonl`` there. ``options``: ``num_beams``, ``max_new_tokens``,
    ``batch_size``, ``max_source_length``."""
    model, tokenizer, target = load_seq2seq(model_dir, device=device)
    read = read_pairs(pairs, source_field=source_field, target_field=target_field)
    read = read[:limit] if limit else read
    scores, records = evaluate_translations(model, tokenizer, read, device=target, **options)
    baseline = copy_source_baseline([p.source for p in read], [p.target for p in read],
                                    lowercase="case:lc" in scores.bleu_signature)
    result = {**scores.to_dict(), "copy_baseline": baseline.to_dict(), "pairs": str(pairs)}
    if out is not None:
        _fileio.write_json(Path(out) / "scores.json", result)
        write_jsonl(Path(out) / PREDICTIONS, records)
    return result
