"""The shape of a checkpoint name table: how one model family's parameter names map onto
bertkit's.

A rule maps a bertkit parameter name (a regular expression) to one or more names in the
family's Hugging Face checkpoints. One name is a rename; several names are stored apart in the
checkpoint and joined along the first dimension in bertkit (query, key and value become the
fused attention projection). A template is a string with ``\\1``-style back-references, or a
function of the match and the config where the name depends on the config (ALBERT's layer
groups).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bertkit.model.config import BertConfig

Template = str | Callable[[re.Match[str], BertConfig], str]


@dataclass(frozen=True)
class NameRule:
    pattern: str                     # full-match regex over a bertkit name
    checkpoint: tuple[Template, ...]

    def apply(self, name: str, config: BertConfig) -> tuple[str, ...] | None:
        match = re.fullmatch(self.pattern, name)
        if match is None:
            return None
        return tuple(match.expand(t) if isinstance(t, str) else t(match, config)
                     for t in self.checkpoint)

    @property
    def first_component(self) -> str | None:
        """The first dotted component of the checkpoint name, when it is fixed."""
        first = self.checkpoint[0]
        return first.split(".")[0] if isinstance(first, str) else None


def rule(pattern: str, *checkpoint: Template) -> NameRule:
    return NameRule(pattern, checkpoint)


@dataclass(frozen=True)
class NameTable:
    """A family's naming: encoder rules (names relative to the encoder), head rules (names
    relative to the task model), and the prefix its task checkpoints put before the encoder.

    ``class_rules`` override the head rules for one model class whose heads the family stores
    under other names (ELECTRA's multiple-choice summary layer). ``tied_decoder`` is the
    checkpoint name of the MLM decoder matrix, which bertkit ties to the word embeddings;
    ``decoder_bias`` maps a second name some writers give the decoder bias to the canonical one.
    """

    model_type: str
    encoder_prefix: str
    encoder_rules: tuple[NameRule, ...]
    head_rules: tuple[NameRule, ...]
    tied_decoder: str
    decoder_bias: tuple[str, str] | None = None
    class_rules: dict[str, tuple[NameRule, ...]] = field(default_factory=dict)

    def checkpoint_names(self, name: str, *, encoder_attribute: str, config: BertConfig,
                         class_name: str = "") -> tuple[str, ...]:
        """The checkpoint names (with the encoder prefix) that hold bertkit parameter ``name``
        of a task model whose encoder sits under ``encoder_attribute``."""
        own_prefix = encoder_attribute + "."
        if name.startswith(own_prefix):
            relative = name[len(own_prefix):]
            for candidate in self.encoder_rules:
                found = candidate.apply(relative, config)
                if found is not None:
                    return tuple(f"{self.encoder_prefix}.{n}" for n in found)
        else:
            for candidate in (*self.class_rules.get(class_name, ()), *self.head_rules):
                found = candidate.apply(name, config)
                if found is not None:
                    return found
        raise KeyError(f"no {self.model_type} checkpoint name for bertkit parameter {name!r}")

    def head_prefixes(self) -> tuple[str, ...]:
        """First components of every head's checkpoint names (``cls.``, ``lm_head.``): a
        checkpoint name starting otherwise belongs to the encoder."""
        rules = [*self.head_rules, *(r for rs in self.class_rules.values() for r in rs)]
        names = {r.first_component for r in rules} | {self.tied_decoder.split(".")[0]}
        return tuple(sorted(f"{n}." for n in names if n is not None))
