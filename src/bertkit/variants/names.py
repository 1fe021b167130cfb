"""The shape of a checkpoint name table: how one model family's parameter names map onto
bertkit's.

A rule maps a bertkit parameter name (a regular expression) to one or more names in the
family's Hugging Face checkpoints. One name is a rename; several names are stored apart in the
checkpoint and joined along the first dimension in bertkit (query, key and value become the
fused attention projection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    pattern: str                  # full-match regex over a bertkit name
    checkpoint: tuple[str, ...]   # templates with \1-style back-references

    def apply(self, name: str) -> tuple[str, ...] | None:
        match = re.fullmatch(self.pattern, name)
        if match is None:
            return None
        return tuple(match.expand(template) for template in self.checkpoint)


def rule(pattern: str, *checkpoint: str) -> NameRule:
    return NameRule(pattern, checkpoint)


@dataclass(frozen=True)
class NameTable:
    """A family's naming: encoder rules (names relative to the encoder), head rules (names
    relative to the task model), and the prefix its task checkpoints put before the encoder."""

    model_type: str
    encoder_prefix: str
    encoder_rules: tuple[NameRule, ...]
    head_rules: tuple[NameRule, ...]

    def checkpoint_names(self, name: str, *, encoder_attribute: str) -> tuple[str, ...]:
        """The checkpoint names (with the encoder prefix) that hold bertkit parameter ``name``
        of a task model whose encoder sits under ``encoder_attribute``."""
        own_prefix = encoder_attribute + "."
        if name.startswith(own_prefix):
            relative = name[len(own_prefix):]
            for candidate in self.encoder_rules:
                found = candidate.apply(relative)
                if found is not None:
                    return tuple(f"{self.encoder_prefix}.{n}" for n in found)
        else:
            for candidate in self.head_rules:
                found = candidate.apply(name)
                if found is not None:
                    return found
        raise KeyError(f"no {self.model_type} checkpoint name for bertkit parameter {name!r}")
