"""BertConfig: every hyper-parameter of a BERT-family encoder, as a typed dataclass.

Field names and defaults are those of a Hugging Face BERT ``config.json`` (BERT-base, uncased).
RoBERTa, DistilBERT, ALBERT and ELECTRA are the same encoder with a few switches
(:class:`Family`, looked up by ``model_type``); their ``config.json`` keys are read and written
through the family's key table (DistilBERT's ``dim`` is ``hidden_size`` here). Keys bertkit does
not model (``transformers_version``, ``architectures``, …) are kept in :attr:`extra` and written
back unchanged, so a round trip through bertkit loses nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from bertkit._fileio import read_json, write_json
from bertkit.errors import ConfigError, DataFormatError

GELU_TANH: Callable[[Tensor], Tensor] = partial(F.gelu, approximate="tanh")

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,  # exact erf form
    "gelu_new": GELU_TANH,
    "gelu_pytorch_tanh": GELU_TANH,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}
"""Every non-linearity by its ``config.json`` name: the one table the encoder, the heads and
the fast path's fused kernels (:mod:`bertkit.inference.fastpath`) read. Names that mean the
same function map to the same object, so a table keyed by function covers all of them."""

HIDDEN_ACTS = tuple(name for name in ACTIVATIONS if name != "tanh")
"""What ``hidden_act`` may name: tanh only appears inside heads (the pooler, classifiers)."""
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@dataclass(frozen=True)
class DenseHead:
    """A classifier with its own hidden layer on the first token's vector (RoBERTa, ELECTRA,
    DistilBERT) instead of a linear layer on the pooler's output (BERT, ALBERT)."""

    activation: str
    dropout_before: bool  # RoBERTa and ELECTRA drop out the input too; DistilBERT does not


@dataclass(frozen=True)
class Family:
    """The facts that set a model family apart from BERT: switches the one encoder and its
    heads read, and how the family's ``config.json`` names bertkit's fields."""

    positions_after_padding: bool = False  # position ids count real tokens from pad_token_id + 1
    pooler: bool = True
    projection: str = "never"              # E → H embedding projection: never / always / if E≠H
    shared_layers: bool = False            # layer groups reused across depth (ALBERT)
    mlm_activation: str | None = None      # the MLM transform's non-linearity; None: hidden_act
    sequence_head: DenseHead | None = None
    choice_head: DenseHead | None = None
    config_keys: dict[str, str] = field(default_factory=dict)  # bertkit field → config.json key
    own_fields: tuple[str, ...] = ()       # fields only this family's config.json holds
    hidden_fields: tuple[str, ...] = ()    # fields its config.json lacks (fixed by the family)
    defaults: dict[str, Any] = field(default_factory=dict)     # for keys a file may omit


FAMILIES: dict[str, Family] = {
    "bert": Family(),
    "roberta": Family(positions_after_padding=True, mlm_activation="gelu",
                      sequence_head=DenseHead("tanh", dropout_before=True)),
    "distilbert": Family(
        pooler=False,
        sequence_head=DenseHead("relu", dropout_before=False),
        choice_head=DenseHead("relu", dropout_before=False),
        config_keys={"hidden_size": "dim", "num_hidden_layers": "n_layers",
                     "num_attention_heads": "n_heads", "intermediate_size": "hidden_dim",
                     "hidden_act": "activation", "hidden_dropout_prob": "dropout",
                     "attention_probs_dropout_prob": "attention_dropout",
                     "classifier_dropout": "seq_classif_dropout"},
        own_fields=("sinusoidal_pos_embds", "qa_dropout"),
        hidden_fields=("type_vocab_size", "layer_norm_eps"),
        defaults={"type_vocab_size": 0, "layer_norm_eps": 1e-12, "qa_dropout": 0.1},
    ),
    "albert": Family(projection="always", shared_layers=True,
                     config_keys={"classifier_dropout": "classifier_dropout_prob"},
                     own_fields=("embedding_size", "num_hidden_groups", "inner_group_num"),
                     defaults={"embedding_size": 128}),
    "electra": Family(pooler=False, projection="if_needed", mlm_activation="gelu",
                      sequence_head=DenseHead("gelu", dropout_before=True),
                      choice_head=DenseHead("gelu", dropout_before=False),
                      own_fields=("embedding_size",), defaults={"embedding_size": 128}),
}
"""Every family bertkit builds, by ``model_type``."""

_FAMILY_ONLY = ("embedding_size", "num_hidden_groups", "inner_group_num",
                "sinusoidal_pos_embds", "qa_dropout")

PRE_LN_FAMILIES = ("bert", "roberta", "electra")
"""The families whose encoder can be pre-LN (``pre_layer_norm``): those whose checkpoint names
are BERT's layer names, where the final LayerNorm has its rule."""

_WRITTEN_WHEN_SET = ("sinusoidal_pos_embds", "is_decoder", "add_cross_attention",
                     "pre_layer_norm")
"""Switches written to ``config.json`` only when on (in any family): a file without them means
off, and the many released encoder configs that omit them stay unchanged on a round trip."""


@dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder and its task heads (defaults: BERT-base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    # "gelu" is the exact erf form, which the released checkpoints expect in PyTorch;
    # the original TensorFlow code used the tanh approximation ("gelu_new").
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    # Family switches (see FAMILIES). embedding_size=None: the embeddings are hidden_size wide.
    embedding_size: int | None = None
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    sinusoidal_pos_embds: bool = False
    # Pre-LN blocks and a final LayerNorm (Xiong et al. 2020; Cramming, ModernBERT): they train
    # stably at higher learning rates. No released BERT checkpoint has them, and
    # ``transformers``' BertModel ignores the key, so such a model is bertkit's own (encoders).
    pre_layer_norm: bool = False
    # A decoder (``transformers``' names): causal self-attention, and with cross-attention
    # each layer also attends to an encoder's output (an encoder-decoder model's decoder).
    is_decoder: bool = False
    add_cross_attention: bool = False
    # Task heads. ``classifier_dropout=None`` means: use hidden_dropout_prob.
    classifier_dropout: float | None = None
    qa_dropout: float = 0.0
    num_labels: int = 2
    problem_type: str | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    model_type: str = "bert"
    # Heads removed for good (Michel et al. 2019), as ``transformers`` records them: layer →
    # head numbers of the unpruned layer. Written to config.json only when not empty.
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # JSON object keys are strings; id2label is keyed by int everywhere else.
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
            if self.label2id is None:
                self.label2id = {v: k for k, v in self.id2label.items()}
        if isinstance(self.pruned_heads, dict):  # JSON keys are strings here too
            self.pruned_heads = {int(k): sorted({int(h) for h in v})
                                 for k, v in self.pruned_heads.items()}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def kept_heads(self, layer: int) -> int:
        """How many attention heads ``layer`` has: all but those in ``pruned_heads``."""
        return self.num_attention_heads - len(self.pruned_heads.get(layer, ()))

    @property
    def family(self) -> Family:
        """The switches of this config's model family."""
        try:
            return FAMILIES[self.model_type]
        except KeyError:
            raise ConfigError(f"model_type must be one of {sorted(FAMILIES)}, "
                              f"got {self.model_type!r}") from None

    @property
    def embedding_dim(self) -> int:
        """E: the width of the token embeddings (and of the MLM transform's output)."""
        return self.hidden_size if self.embedding_size is None else self.embedding_size

    @property
    def projects_embeddings(self) -> bool:
        """Whether an E → H projection sits between the embeddings and the first layer."""
        rule = self.family.projection
        return rule == "always" or (rule == "if_needed" and self.embedding_dim != self.hidden_size)

    @property
    def max_tokens(self) -> int:
        """The longest input the position table covers (RoBERTa spends pad_token_id + 1 rows
        below its first position)."""
        offset = self.pad_token_id + 1 if self.family.positions_after_padding else 0
        return self.max_position_embeddings - offset

    def layer_order(self) -> list[int]:
        """Which of the distinct layers runs at each depth step.

        ALBERT splits ``num_hidden_layers`` into ``num_hidden_groups`` consecutive blocks; each
        block reuses one group of ``inner_group_num`` layers, and every inner layer is a step.
        Without sharing, step i runs layer i.
        """
        if not self.family.shared_layers:
            return list(range(self.num_hidden_layers))
        per_group = self.num_hidden_layers // self.num_hidden_groups
        return [(depth // per_group) * self.inner_group_num + inner
                for depth in range(self.num_hidden_layers)
                for inner in range(self.inner_group_num)]

    def validate(self) -> BertConfig:
        """Raise :class:`ConfigError` naming the first field that cannot work; return self."""
        family = self.family
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "num_labels",
                    "num_hidden_groups", "inner_group_num")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.type_vocab_size < 0:
            raise ConfigError(f"type_vocab_size must be >= 0, got {self.type_vocab_size}")
        self._validate_family(family)
        if self.hidden_act not in HIDDEN_ACTS:
            raise ConfigError(f"hidden_act must be one of {HIDDEN_ACTS}, got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                     "qa_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if self.add_cross_attention and not self.is_decoder:
            raise ConfigError("add_cross_attention=True needs is_decoder=True: only a decoder "
                              "attends to an encoder's output")
        if self.is_decoder and self.model_type != "bert":
            raise ConfigError(f"is_decoder is supported for model_type 'bert' only, got "
                              f"{self.model_type!r}")
        if self.pre_layer_norm and (self.is_decoder or self.model_type not in PRE_LN_FAMILIES):
            raise ConfigError(f"pre_layer_norm is supported for the encoders of model_type "
                              f"{', '.join(PRE_LN_FAMILIES)} only, got "
                              f"{'a decoder' if self.is_decoder else repr(self.model_type)}")
        if self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.initializer_range <= 0:
            raise ConfigError(f"initializer_range must be > 0, got {self.initializer_range!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        if self.id2label is not None and sorted(self.id2label) != list(range(len(self.id2label))):
            raise ConfigError(f"id2label keys must be 0..{len(self.id2label) - 1}, "
                              f"got {sorted(self.id2label)}")
        self._validate_pruned_heads()
        return self

    def _validate_pruned_heads(self) -> None:
        """Every pruned head exists, and every layer keeps one. ``transformers`` 5.23 runs a
        layer with no heads (its attention sublayer then adds only the output bias); bertkit
        refuses it instead: zero-width projections would need their own paths in the core,
        the fast form and its oneDNN kernels, for a layer that no longer attends at all."""
        if not isinstance(self.pruned_heads, dict):
            raise ConfigError(f"pruned_heads must map layer → head list, got "
                              f"{type(self.pruned_heads).__name__}")
        if self.pruned_heads and (self.family.shared_layers or self.is_decoder):
            raise ConfigError("pruned_heads is supported for unshared encoders only (not "
                              f"{'albert' if self.family.shared_layers else 'a decoder'})")
        heads = self.num_attention_heads
        for layer, pruned in self.pruned_heads.items():
            if not 0 <= layer < self.num_hidden_layers:
                raise ConfigError(f"pruned_heads: layer {layer} is out of range "
                                  f"(0..{self.num_hidden_layers - 1})")
            outside = [h for h in pruned if not 0 <= h < heads]
            if outside:
                raise ConfigError(f"pruned_heads: layer {layer} names heads {outside}; "
                                  f"heads are 0..{heads - 1}")
            if len(pruned) >= heads:
                raise ConfigError(f"pruned_heads: layer {layer} would lose all {heads} of its "
                                  "heads; keep at least one head per layer")

    def _validate_family(self, family: Family) -> None:
        kind = self.model_type
        if self.embedding_size is not None and (
                not isinstance(self.embedding_size, int) or self.embedding_size < 1):
            raise ConfigError(f"embedding_size must be a positive integer, got "
                              f"{self.embedding_size!r}")
        if family.projection == "never" and self.embedding_dim != self.hidden_size:
            raise ConfigError(f"embedding_size ({self.embedding_size}) must equal hidden_size "
                              f"({self.hidden_size}) for {kind}: only albert and electra "
                              "project their embeddings")
        if not family.shared_layers and (self.num_hidden_groups, self.inner_group_num) != (1, 1):
            raise ConfigError(f"num_hidden_groups and inner_group_num must be 1 for {kind}: only "
                              "albert shares layers")
        if self.num_hidden_layers % self.num_hidden_groups:
            raise ConfigError(
                f"num_hidden_groups ({self.num_hidden_groups}) must divide num_hidden_layers "
                f"({self.num_hidden_layers}): each group serves an equal block of layers")
        if "type_vocab_size" in family.hidden_fields and self.type_vocab_size:
            raise ConfigError(f"type_vocab_size must be 0 for {kind}, which has no segment "
                              f"embeddings; got {self.type_vocab_size}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_position_embeddings ({self.max_position_embeddings}) must "
                              f"exceed pad_token_id + 1 ({self.pad_token_id + 1}) for {kind}, "
                              "whose positions start after the padding index")

    # ---- dict / JSON ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content under the family's key names, then the preserved extra
        keys."""
        family = self.family
        on = {name for name in _WRITTEN_WHEN_SET if getattr(self, name)}
        off = set(_WRITTEN_WHEN_SET) - on - set(family.own_fields)
        skipped = {"extra", *family.hidden_fields, *(set(_FAMILY_ONLY) - set(family.own_fields)),
                   *off} - on
        data = {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self) if f.name not in skipped}
        if self.id2label is not None:
            data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        for key in ("id2label", "label2id", "problem_type", "classifier_dropout"):
            if data[key] is None:
                del data[key]
        if self.pruned_heads:
            data["pruned_heads"] = {str(k): list(v) for k, v in sorted(self.pruned_heads.items())}
        else:
            del data["pruned_heads"]
        data = {family.config_keys.get(k, k): v for k, v in data.items()}
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | Path | None = None) -> BertConfig:
        """Build a config from a ``config.json`` mapping; unknown keys go to :attr:`extra`."""
        if not isinstance(data, dict):
            raise DataFormatError(f"expected a JSON object, got {type(data).__name__}", source)
        family = FAMILIES.get(data.get("model_type", "bert"))
        if family is not None:  # an unknown family is reported by validate(), naming the field
            fields_of = {key: name for name, key in family.config_keys.items()}
            data = {**family.defaults, **{fields_of.get(k, k): v for k, v in data.items()}}
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            config = cls(**kwargs, extra=extra)
        except (TypeError, ValueError, AttributeError) as err:
            raise DataFormatError(f"invalid config: {err}", source) from None
        try:
            return config.validate()
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}" if source else str(err)) from None

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        return cls.from_dict(read_json(path), source=path)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BertConfig:
        """Read ``DIR/config.json`` (or the file itself when given a file)."""
        path = Path(directory)
        if not path.exists():
            raise DataFormatError("no such model directory or config file", path)
        return cls.from_json_file(path / "config.json" if path.is_dir() else path)

    def save_pretrained(self, directory: str | Path) -> None:
        write_json(Path(directory) / "config.json", self.to_dict())
