"""BertConfig: every hyper-parameter of a BERT encoder, as a typed dataclass.

Field names and defaults are those of a Hugging Face BERT ``config.json`` (BERT-base, uncased),
so a checkpoint's configuration reads and writes without a translation table. Keys bertkit does
not model (``transformers_version``, ``architectures``, …) are kept in :attr:`extra` and written
back unchanged, so a round trip through bertkit loses nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit._fileio import read_json, write_json
from bertkit.errors import ConfigError, DataFormatError

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


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
    # Task heads. ``classifier_dropout=None`` means: use hidden_dropout_prob.
    classifier_dropout: float | None = None
    num_labels: int = 2
    problem_type: str | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    model_type: str = "bert"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # JSON object keys are strings; id2label is keyed by int everywhere else.
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
            if self.label2id is None:
                self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> BertConfig:
        """Raise :class:`ConfigError` naming the first field that cannot work; return self."""
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "num_labels")
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
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
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
        return self

    # ---- dict / JSON ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content: known fields first, then the preserved extra keys."""
        data = {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self) if f.name != "extra"}
        if self.id2label is not None:
            data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        for key in ("id2label", "label2id", "problem_type", "classifier_dropout"):
            if data[key] is None:
                del data[key]
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | Path | None = None) -> BertConfig:
        """Build a config from a ``config.json`` mapping; unknown keys go to :attr:`extra`."""
        if not isinstance(data, dict):
            raise DataFormatError(f"expected a JSON object, got {type(data).__name__}", source)
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
