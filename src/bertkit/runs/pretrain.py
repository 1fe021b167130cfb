"""The pretraining run driver: raw text files + a tokenizer + a model size → a checkpoint
directory that :meth:`~bertkit.model.pretrained.BertForPreTraining.from_pretrained` (or the family's
pretraining class) loads.

Why a driver and not more library pieces: every piece already exists (corpus reading, instance
creation, masking, the objective, the generic trainer); what a user needs is one call that wires
them the way BERT and RoBERTa did, checks the mistakes that otherwise show up hours later (a
vocabulary that does not fit the embedding table, a resume into another model), and leaves a
directory in the Hugging Face format with the tokenizer beside the weights.

Four regimes (objectives), each for one model family:

- ``"bert"`` (static): sentence-pair NSP instances built once with ``dupe_factor`` passes,
  masked once per pass and written to memory-mapped shards under ``OUT/data/<fingerprint>/``
  (reused by a resumed or repeated run with the same corpus, tokenizer and data settings).
- ``"roberta"`` (dynamic): documents packed end to end into full-length sequences, no NSP, a
  fresh mask every time a sequence is drawn (the masking generator is checkpointed, so resume
  stays exact); saved as ``RobertaForMaskedLM`` (``model_type: roberta``: one segment,
  positions after the padding index), a ``bert_*`` preset converted to that family unless the
  overrides say ``model_type: bert`` (then a BERT on RoBERTa's recipe, as before).
- ``"albert"`` (static, ALBERT models): as ``"bert"`` with sentence-order prediction instead of
  NSP (B is always A's continuation; half the pairs are swapped), saved as
  ``AlbertForPreTraining``.
- ``"electra"`` (dynamic, ELECTRA models): the ``"roberta"`` data, masked 85 % ``[MASK]`` /
  15 % kept (no random tokens: the generator supplies the replacements), a generator of
  ``generator_size`` × the discriminator's width and the discriminator trained jointly on
  replaced-token detection (:mod:`bertkit.objectives.replaced_token`); both are saved.

Held-out evaluation: a fixed, evenly spaced set of *documents* is kept out of training and
turned into batches with a fixed mask once, so every evaluation of a run scores the same
predictions. Each evaluation appends a ``"kind": "pretrain_eval"`` record to
``OUT/metrics.jsonl`` with exact MLM accuracy, perplexity, NSP (or SOP) accuracy and the
unigram baseline (always predicting the most frequent masked target of the held-out set), and
``content_accuracy``: the MLM accuracy on targets outside the training data's 100 most frequent
tokens (:func:`~bertkit.runs.pretrain_data.content_table`), which function words cannot earn; for
ELECTRA the MLM figures are the generator's, plus the discriminator's ``rtd_accuracy``, the
``replaced_fraction``, ``rtd_baseline`` (the accuracy of answering "original" everywhere) and
``rtd_auc`` (the discriminator's ROC AUC over the held-out tokens: 0.5 = no skill, which shows
learning before the accuracy leaves the all-original rate).

Output directory layout::

    OUT/config.json, model.safetensors     the model (written when training stops)
    OUT/tokenizer.json, vocab.txt, ...     the tokenizer
    OUT/discriminator/, OUT/generator/     instead of the two above, for ELECTRA (each a
                                           model directory with the tokenizer)
    OUT/pretrain.json                      the run's settings (checked on --resume)
    OUT/metrics.jsonl                      training and evaluation records
    OUT/checkpoints/step-XXXXXXXX/         resumable training state (the trainer's)
    OUT/data/<fingerprint>/                shards of the static regime
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from bertkit import _fileio
from bertkit.data.corpus import CorpusFormat, expand_sources
from bertkit.data.masking import MaskingConfig
from bertkit.errors import ConfigError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import (
    AlbertForPreTraining,
    BertForPreTraining,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    PreTrainedModel,
    RobertaForMaskedLM,
)
from bertkit.objectives import (
    ElectraObjective,
    PreTrainingObjective,
    generator_config,
    pretraining_loss_fn,
    rtd_scores,
    summarize,
)
from bertkit.runs.pretrain_data import PAIR_TASK as _PAIR_TASK
from bertkit.runs.pretrain_data import (
    barrier,
    content_table,
    dynamic_data,
    static_data,
    token_counts,
    unigram_baseline,
    unigram_log_prior,
)
from bertkit.runs.pretrain_output import RUN_FILE, check_resume, save_final
from bertkit.tasks.metrics import roc_auc
from bertkit.tokenization import Tokenizer
from bertkit.training import ResumableLoader, TrainConfig, Trainer, distributed
from bertkit.training.checkpointing import list_checkpoints
from bertkit.training.settings import TRAINING_RENAMED, TrainSettings, accepts_old_names
from bertkit.variants import PRESETS

logger = logging.getLogger(__name__)

Regime = Literal["bert", "roberta", "albert", "electra"]
REGIMES = ("bert", "roberta", "albert", "electra")
MLM_BIAS_INITS = ("unigram", "zeros")
#: The model family (``model_type``) each regime trains.
REGIME_FAMILY = {"bert": "bert", "roberta": "roberta", "albert": "albert", "electra": "electra"}
#: What ``build()`` returns to be saved: one model (saved in OUT) or several by sub-folder.
Saved = PreTrainedModel | Mapping[str, PreTrainedModel]
#: Settings that decide the training data or the model; a resumed run must keep them.
_DATA_FIELDS = ("regime", "corpus_format", "seq_len", "mlm_rate", "max_predictions",
                "whole_word", "dupe_factor", "short_seq_prob", "eval_fraction", "seed")


@accepts_old_names
@dataclass(kw_only=True)
class PretrainSettings(TrainSettings):
    """Everything one pretraining run needs: the shared training settings
    (:class:`~bertkit.training.settings.TrainSettings`) plus the corpus, the model and the
    masking. Defaults follow BERT where it has one (masking rate 15 %, short-sequence
    probability 0.1); ``dupe_factor`` is 5, not Google's 10, to halve the shard size on small
    machines; the MLM output bias starts at the unigram prior, not at zero (``mlm_bias_init``,
    measured in the README). ``grad_accum`` and ``num_threads`` are the old names of
    ``grad_accum_steps`` and ``threads`` (accepted, with a warning, for one release)."""

    renamed: ClassVar[Mapping[str, str]] = TRAINING_RENAMED

    corpus: Sequence[str | Path]  # files, directories, globs
    output_dir: str | Path = field()  # required (field(): not the inherited None)
    tokenizer: str | Path  # tokenizer directory or tokenizer.json / vocab.txt
    preset: str | None = "bert_tiny"  # a name in PRESETS; ignored when config_path is given
    config_path: str | Path | None = None  # a config.json (vocab_size must match the tokenizer)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # preset field overrides
    regime: Regime = "bert"
    rtd_weight: float = 50.0  # ELECTRA: λ, the discriminator loss's weight
    generator_size: float = 0.25  # ELECTRA: generator hidden size / discriminator hidden size
    corpus_format: CorpusFormat = "lines"
    seq_len: int = 128
    batch_size: int = 32
    mlm_rate: float = 0.15
    max_predictions: int | None = None
    whole_word: bool = False
    dupe_factor: int = 5
    short_seq_prob: float = 0.1
    #: The masked-LM output bias of a model trained from scratch: "unigram" starts it at the
    #: training targets' log frequencies (:func:`~bertkit.runs.pretrain_data.unigram_log_prior`),
    #: "zeros" as BERT and ``transformers`` do. A resumed run keeps its checkpoint's bias.
    mlm_bias_init: Literal["unigram", "zeros"] = "unigram"
    eval_fraction: float = 0.05  # share of documents held out (0 = no evaluation)
    eval_max_examples: int = 1024
    # The loop's cadence (see TrainConfig).
    eval_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    log_every: int = 10

    def validate(self) -> PretrainSettings:
        """Raise :class:`ConfigError` naming the first setting that cannot work."""
        def fail(name: str, expected: str) -> None:
            raise ConfigError(f"pretraining setting {name} must be {expected}, "
                              f"got {getattr(self, name)!r}")

        if self.regime not in REGIMES:
            fail("regime", f"one of {', '.join(REGIMES)}")
        if not (math.isfinite(self.rtd_weight) and self.rtd_weight > 0):
            fail("rtd_weight", "a positive number (ELECTRA uses 50)")
        if not 0 < self.generator_size <= 1:
            fail("generator_size", "in (0, 1] (ELECTRA uses 0.25)")
        if self.corpus_format not in ("lines", "free"):
            fail("corpus_format", "'lines' or 'free'")
        if not isinstance(self.seq_len, int) or self.seq_len < 8:
            fail("seq_len", "an integer >= 8")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            fail("batch_size", "an integer >= 1")
        if not 0 < self.mlm_rate < 1:
            fail("mlm_rate", "in (0, 1)")
        if self.max_predictions is not None and self.max_predictions < 1:
            fail("max_predictions", "an integer >= 1 (or None)")
        if not isinstance(self.dupe_factor, int) or self.dupe_factor < 1:
            fail("dupe_factor", "an integer >= 1")
        if not (isinstance(self.short_seq_prob, int | float) and 0 <= self.short_seq_prob <= 1):
            fail("short_seq_prob", "in [0, 1] (BERT uses 0.1)")
        if self.mlm_bias_init not in MLM_BIAS_INITS:
            fail("mlm_bias_init", f"one of {', '.join(MLM_BIAS_INITS)}")
        if not 0 <= self.eval_fraction < 0.5:
            fail("eval_fraction", "in [0, 0.5)")
        if self.eval_max_examples < 1:
            fail("eval_max_examples", "an integer >= 1")
        self._check_model_source()
        if not self.corpus:
            raise UsageError("no corpus given: pass one or more text files, directories or globs")
        return self

    def _check_model_source(self) -> None:
        """A preset or a config.json must give the model's shape (a subclass whose shape comes
        from elsewhere, e.g. a distillation's teacher, overrides this)."""
        if self.config_path is None and self.preset not in PRESETS:
            raise ConfigError(f"pretraining setting preset must be one of {', '.join(PRESETS)} "
                              f"(or give config_path), got {self.preset!r}")

    def data_recipe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _DATA_FIELDS}


@dataclass
class PretrainResult:
    """How a run ended, and what its last held-out evaluation measured."""

    output_dir: Path
    step: int
    stop_reason: str
    checkpoint: Path | None
    eval: dict[str, float] | None  # mlm_accuracy, perplexity, nsp_accuracy, unigram_baseline …
    history: list[dict[str, float]] = field(default_factory=list)  # every evaluation
    train_examples: int = 0
    eval_examples: int = 0
    model_dir: Path | None = None  # what to fine-tune: OUT, or OUT/discriminator for ELECTRA


# --------------------------------------------------------------------------- model + tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The run's tokenizer; it must have a mask token (MLM cannot work without one)."""
    tokenizer = Tokenizer.from_pretrained(path)
    if tokenizer.mask_token_id is None:
        raise ConfigError(f"tokenizer {path} has no mask token ({tokenizer.mask_token}); "
                          "masked-LM pretraining needs one")
    return tokenizer


def model_config(settings: PretrainSettings, tokenizer: Tokenizer) -> BertConfig:
    """The model's config: the preset sized to the tokenizer's vocabulary, or a config.json
    that must already agree with it (a mismatch is named with both numbers: a smaller table
    crashes on the first large id, a larger one leaves rows untrained)."""
    vocab = tokenizer.vocab_size
    if settings.config_path is not None:
        config = BertConfig.from_pretrained(settings.config_path)
        source = f"model config {settings.config_path}"
    else:
        known = {f.name for f in dataclasses.fields(BertConfig)} - {"extra"}
        unknown = sorted(set(settings.model_overrides) - known)
        if unknown:
            raise ConfigError(f"unknown model config field(s) {unknown}; known: {sorted(known)}")
        config = PRESETS[settings.preset](  # type: ignore[index]
            vocab_size=vocab, pad_token_id=tokenizer.pad_token_id)
        config = dataclasses.replace(config, **settings.model_overrides).validate()
        if (settings.regime == "roberta" and config.model_type == "bert"
                and "model_type" not in settings.model_overrides):
            config = roberta_config(config)
        source = f"preset {settings.preset} with overrides {settings.model_overrides}"
    if config.vocab_size != vocab:
        raise ConfigError(
            f"tokenizer {settings.tokenizer} has a vocabulary of {vocab} tokens but the "
            f"{source} has vocab_size={config.vocab_size}; they must be equal (train the "
            f"tokenizer with --vocab-size {config.vocab_size} or set vocab_size to {vocab})")
    if config.max_tokens < settings.seq_len:
        raise ConfigError(f"seq_len={settings.seq_len} exceeds the model's longest input "
                          f"({config.max_tokens} positions)")
    family = REGIME_FAMILY[settings.regime]
    # A BERT may be trained on RoBERTa's recipe when asked for by name (a distillation teacher).
    if config.model_type not in ((family, "bert") if settings.regime == "roberta" else (family,)):
        presets = ", ".join(name for name in PRESETS if name.startswith(family + "_"))
        raise ConfigError(
            f"the {settings.regime} pretraining objective trains {family!r} models, but the "
            f"{source} is a {config.model_type!r} model; choose a {family} preset ({presets}) "
            f"or a config with model_type {family!r}")
    if settings.regime in _PAIR_TASK and config.type_vocab_size < 2:
        raise ConfigError(f"the {settings.regime} regime (sentence pairs) needs "
                          f"type_vocab_size >= 2, the model has {config.type_vocab_size}; "
                          "use --regime roberta")
    return config


def roberta_config(config: BertConfig) -> BertConfig:
    """A BERT preset as a RoBERTa: one segment, and ``pad_token_id + 1`` more position rows
    (RoBERTa's positions start after the padding index), so it takes the same lengths."""
    return dataclasses.replace(
        config, model_type="roberta", type_vocab_size=1,
        max_position_embeddings=config.max_position_embeddings + config.pad_token_id + 1
    ).validate()


def masking_config(settings: PretrainSettings, tokenizer: Tokenizer) -> MaskingConfig:
    """BERT's 80/10/10; ELECTRA's 85 % mask / 15 % kept (its ``pretrain_helpers.mask``): the
    generator, not a uniform draw, supplies the discriminator's replacements."""
    fractions = {"mask_fraction": 0.85, "random_fraction": 0.0} \
        if settings.regime == "electra" else {}
    return MaskingConfig(vocab_size=tokenizer.vocab_size,
                         mask_token_id=int(tokenizer.mask_token_id),  # type: ignore[arg-type]
                         special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
                         rate=settings.mlm_rate,
                         max_predictions=settings.max_predictions, **fractions).validate()


def word_continuation_table(tokenizer: Tokenizer) -> torch.Tensor:
    """(V,) bool: True for WordPiece continuation pieces (``##…``), for whole-word masking."""
    table = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
    for token, index in tokenizer.get_vocab().items():
        if index < tokenizer.vocab_size and token.startswith("##"):
            table[index] = True
    return table


# --------------------------------------------------------------------------- the run


def pretrain(settings: PretrainSettings, *, resume: bool = False) -> PretrainResult:
    """Pretrain a BERT from text files; returns when a budget is spent or on Ctrl-C.

    Under ``torchrun`` the process group is opened here and the trainer uses DDP; only rank 0
    builds shards and writes files.

    Raises:
        BertkitError subclasses: an empty or too small corpus, a tokenizer that does not fit
        the model, a resume into another configuration, a failed save (e.g. a full disk).
    """
    settings.validate()
    tokenizer = load_tokenizer(settings.tokenizer)
    config = model_config(settings, tokenizer)
    if settings.regime == "electra":
        generator = generator_config(config, settings.generator_size)

        def build_electra() -> tuple[Saved, nn.Module]:
            discriminator = ElectraForPreTraining(config)
            networks = {"discriminator": discriminator,
                        "generator": ElectraForMaskedLM(generator)}
            return networks, ElectraObjective(networks["generator"], discriminator,
                                              rtd_weight=settings.rtd_weight,
                                              eval_seed=settings.seed + 1)

        return run_training(settings, tokenizer, config, build_electra, resume=resume,
                            extra_configs={"generator_config": generator})

    def build() -> tuple[Saved, nn.Module]:
        model_class = {"albert": AlbertForPreTraining,
                       "roberta": RobertaForMaskedLM}.get(config.model_type, BertForPreTraining)
        model = model_class(config)
        return model, PreTrainingObjective(model, pair_task=_PAIR_TASK.get(settings.regime, "nsp"))

    return run_training(settings, tokenizer, config, build, resume=resume)


def run_training(settings: PretrainSettings, tokenizer: Tokenizer, config: BertConfig,
                 build: Callable[[], tuple[Saved, nn.Module]], *,
                 resume: bool = False,
                 summarize_eval: Callable[[Mapping[str, Any]], dict[str, float]] = summarize,
                 extra_configs: Mapping[str, BertConfig] | None = None,
                 identity: Mapping[str, str] | None = None,
                 ) -> PretrainResult:
    """The run around a masked-LM objective: data, trainer, held-out records, final save.

    ``build()`` is called once the seed is set (identical weights on every rank) and returns
    the model saved at the end and the objective trained: ``objective(batch) -> (loss,
    metrics)``, whose ``state_dict`` is the model's (:class:`PreTrainingObjective` for BERT,
    a distillation objective for a student). ``config`` is the model's, checked on resume;
    ``summarize_eval`` turns the trainer's averaged evaluation metrics into the
    ``pretrain_eval`` record. ``build()`` may instead return several models by sub-folder of
    OUT (ELECTRA's discriminator and generator); ``extra_configs`` are the other networks'
    configs by their key in ``pretrain.json``, checked on resume too. ``identity`` names
    inputs the settings only point to (the distillation teacher's weight digest): recorded in
    ``pretrain.json`` and required to be the same on resume.
    """
    configs = {"model_config": config, **(extra_configs or {})}
    identity = dict(identity or {})
    settings.apply_threads()
    out = Path(settings.output_dir)
    # Complete checkpoints only: a run killed in its first save leaves just a hidden temporary,
    # and must be restartable.
    if not resume and list_checkpoints(out / "checkpoints"):
        raise UsageError(f"{out} already holds checkpoints of an earlier run: pass --resume to "
                         "continue it, or choose another output directory")
    if resume:
        check_resume(out, settings, configs, identity)
    files = expand_sources(list(settings.corpus))
    corpus = ", ".join(str(p) for p in settings.corpus)
    masking = masking_config(settings, tokenizer)
    continuation = word_continuation_table(tokenizer) if settings.whole_word else None

    with distributed(settings.device) as ctx:
        if settings.regime in _PAIR_TASK:
            data = static_data(settings, files, tokenizer, masking, continuation, out, corpus)
        else:
            data = dynamic_data(settings, files, tokenizer, masking, continuation, corpus)
        global_batch = settings.batch_size * ctx.world_size
        if len(data.train) < global_batch:
            raise UsageError(
                f"corpus {corpus} gives {len(data.train)} training example(s), fewer than one "
                f"batch ({ctx.world_size} process(es) × batch size {settings.batch_size}); add "
                "text or lower --batch-size")
        loader = ResumableLoader(data.train, settings.batch_size, collate_fn=data.collate_fn,
                                 seed=settings.seed)
        train_config = TrainConfig(
            **{**settings.shared(), "output_dir": out},
            eval_every=settings.eval_every if data.eval_batches else 0,
            checkpoint_every=settings.checkpoint_every, keep_checkpoints=settings.keep_checkpoints,
            log_every=settings.log_every,
            # RoBERTa has no NSP labels: the pooler and NSP head get no gradient.
            ddp_find_unused_parameters=settings.regime == "roberta",
        )
        torch.manual_seed(settings.seed)  # the initial weights, identical on every rank
        saved, objective = build()
        models = {"": saved} if isinstance(saved, PreTrainedModel) else dict(saved)
        if isinstance(objective, PreTrainingObjective):
            counts = token_counts(data.train)  # for content_accuracy and the prior
            objective.content_tokens = content_table(counts, tokenizer)
            if settings.mlm_bias_init == "unigram" and not resume:
                with torch.no_grad():
                    objective.model.mlm.bias.copy_(unigram_log_prior(counts, tokenizer))
        trainer = Trainer(objective, pretraining_loss_fn, loader, train_config,
                          eval_data=data.eval_batches or None, dist=ctx,
                          generators=data.generators)
        baseline = unigram_baseline(data.eval_batches) if data.eval_batches else None
        history: list[dict[str, float]] = []

        def record_eval(trainer: Trainer, info: dict[str, Any]) -> None:
            exact = {"step": info["step"], **summarize_eval(info["metrics"])}
            if baseline is not None:
                exact["unigram_baseline"] = baseline
            if isinstance(objective, ElectraObjective):  # a ranking needs every logit
                scores, labels = rtd_scores(objective, data.eval_batches)
                if 0 < int(labels.sum()) < labels.numel():  # both classes: AUC is defined
                    exact["rtd_auc"] = roc_auc(labels.cpu().numpy(), scores.cpu().numpy())
            history.append(exact)
            trainer.metrics_log.write({"kind": "pretrain_eval", **exact})

        trainer.add_callback("on_eval_end", record_eval)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            _fileio.write_json(out / RUN_FILE, {
                "settings": _fileio.json_ready(dataclasses.asdict(settings)),
                **{name: c.to_dict() for name, c in configs.items()},
                "data": settings.data_recipe(),
                **({"identity": identity} if identity else {}),
            })
        result = trainer.fit(resume=resume)
        if data.eval_batches and (not history or history[-1]["step"] != result.step):
            record_eval(trainer, {"step": result.step, "metrics": trainer.evaluate()})
            trainer.metrics_log.close()
        if ctx.is_main:
            save_final(models, tokenizer, out, training_data=files, seed=settings.seed,
                        extra={"regime": settings.regime, **identity})
        barrier()
    return PretrainResult(out, result.step, result.stop_reason, result.checkpoint,
                          history[-1] if history else None, history, len(data.train),
                          sum(len(b) for b in data.eval_batches), out / next(iter(models)))
