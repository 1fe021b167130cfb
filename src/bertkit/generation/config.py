"""GenerationConfig: how to pick target tokens, with ``transformers``' field names and
defaults (so ``generate(num_beams=4, no_repeat_ngram_size=3)`` means the same in both)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from bertkit.errors import UsageError


@dataclass
class GenerationConfig:
    """Search and stopping settings; token ids left ``None`` come from the model's config."""

    max_new_tokens: int = 20
    min_new_tokens: int = 0
    min_length: int = 0          # of the whole target, the start token included
    num_beams: int = 1
    num_return_sequences: int = 1
    length_penalty: float = 1.0  # finished beams score sum(log p) / length ** length_penalty
    early_stopping: bool | Literal["never"] = False
    no_repeat_ngram_size: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    use_cache: bool = True       # False recomputes the whole prefix every step (for comparison)
    decoder_start_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def merged(self, options: dict[str, Any], **model_defaults: int | None) -> GenerationConfig:
        """A copy with ``options`` applied and the unset token ids taken from the model."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"unknown generation option(s) {unknown}; known: {sorted(known)}")
        config = dataclasses.replace(self, **options)
        filled = {name: value for name, value in model_defaults.items()
                  if getattr(config, name) is None}
        return dataclasses.replace(config, **filled)

    def validate(self, vocab_size: int) -> GenerationConfig:
        """Raise :class:`UsageError` naming the first setting that cannot work; return self."""
        for name in ("max_new_tokens", "num_beams", "num_return_sequences"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        for name in ("min_new_tokens", "min_length", "no_repeat_ngram_size", "top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"{name} must be a non-negative integer, got {value!r}")
        if self.num_beams > vocab_size:
            raise UsageError(f"num_beams ({self.num_beams}) exceeds the vocabulary "
                             f"({vocab_size} tokens): there are not that many distinct "
                             "continuations to keep")
        if self.num_return_sequences > self.num_beams:
            raise UsageError(f"num_return_sequences ({self.num_return_sequences}) must be at "
                             f"most num_beams ({self.num_beams})")
        if self.early_stopping not in (True, False, "never"):
            raise UsageError(f"early_stopping must be True, False or 'never', got "
                             f"{self.early_stopping!r}")
        if self.do_sample and self.num_beams > 1:
            raise UsageError("do_sample with num_beams > 1 (beam sampling) is not supported; "
                             "sample with num_beams=1 or search with do_sample=False")
        if not self.temperature > 0:
            raise UsageError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.decoder_start_token_id is None:
            raise UsageError("decoder_start_token_id is not set (in the model's config or the "
                             "generation config): the decoder needs a first token")
        for name in ("decoder_start_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < vocab_size:
                raise UsageError(f"{name} ({value}) must be in [0, vocab_size={vocab_size})")
        return self
