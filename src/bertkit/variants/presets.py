"""Presets as data: a family's fixed settings plus one row of sizes per released model, turned
into the preset functions (``bert_tiny(**overrides) -> BertConfig``). Adding a size is one table
row, and every preset merges ``overrides`` over its settings the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bertkit.model.config import BertConfig

Preset = Callable[..., BertConfig]
Row = tuple[Mapping[str, object], str]  # (size fields, docstring)


def shape(layers: int, hidden: int, heads: int, **extra: object) -> dict[str, object]:
    """A row's size fields; the feed-forward width is 4 × hidden in every released family."""
    return dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                intermediate_size=4 * hidden, **extra)


def make_presets(family: Mapping[str, object], rows: Mapping[str, Row]) -> dict[str, Preset]:
    """One preset function per row, by name: the family's settings, then the row's sizes."""
    return {name: _preset(name, doc, {**family, **sizes}) for name, (sizes, doc) in rows.items()}


def _preset(name: str, doc: str, settings: Mapping[str, object]) -> Preset:
    def make(**overrides: object) -> BertConfig:
        return BertConfig(**{**settings, **overrides}).validate()  # type: ignore[arg-type]

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc
    return make
