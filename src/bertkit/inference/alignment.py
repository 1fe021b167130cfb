"""Cross-attention alignment of a translation: which source words each target word attends to.

The classic picture of an encoder–decoder (Bahdanau et al. 2015): rows are the target words,
columns the source words, a cell the cross-attention probability. The target is run through the
decoder with teacher forcing — the model's own translation (default) or a given reference — and
the row of a target token is the decoder position that *predicts* it, i.e. what the model looked
at while choosing that token.

Word pieces are merged into words: a source word's column is the SUM of its pieces' columns (so
each row still sums to 1) and a target word's row the MEAN of its pieces' rows; ``[CLS]`` and
``[SEP]`` stay as their own columns/rows (a decoder often parks attention on them). The result
is an :class:`~bertkit.inference.attention_maps.AttentionMaps`, so the PNG heatmaps and the HTML
view of :mod:`bertkit.inference.attention_maps` draw it unchanged.

Shape legend: N heads, T target tokens, S source tokens, W words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bertkit.errors import UsageError
from bertkit.inference.attention_maps import (
    AttentionMaps,
    plot_attention,
    viz_available,
    write_attention_html,
)
from bertkit.tasks.translation import MAX_NEW_TOKENS, translate
from bertkit.tokenization import Tokenizer

__all__ = ["AlignmentFiles", "cross_attention_maps", "mean_over_heads", "write_alignment"]


def _words(tokenizer: Tokenizer, text: str, max_length: int) -> tuple[list[int], list[str],
                                                                         list[int]]:
    """Ids (with [CLS]/[SEP], cut to ``max_length``), one label per word or special token,
    and for each token the index of its label."""
    encoding = tokenizer(text, return_offsets_mapping=True, return_word_ids=True,
                         truncation=True, max_length=max_length)
    ids = list(encoding["input_ids"])
    spans: list[list[int] | str] = []  # a word's [start, end] in the text, or a special token
    group: list[int] = []
    seen: dict[int, int] = {}
    for token, word, (start, end) in zip(ids, encoding["word_ids"],
                                         encoding["offset_mapping"], strict=True):
        if word is None:  # a special token: its own row/column
            spans.append(tokenizer.convert_ids_to_tokens(token))
        elif word in seen:
            spans[seen[word]][1] = end  # type: ignore[index]
        else:
            seen[word] = len(spans)
            spans.append([start, end])
        group.append(seen[word] if word is not None else len(spans) - 1)
    labels = [span if isinstance(span, str) else text[span[0]:span[1]] for span in spans]
    return ids, labels, group


def _merge(probs: Tensor, rows: Sequence[int], columns: Sequence[int]) -> Tensor:
    """(N, T, S) token probabilities → (N, R, C) word probabilities: columns summed, rows
    averaged over their pieces."""
    n_rows, n_cols = max(rows) + 1, max(columns) + 1
    col_map = torch.zeros(probs.shape[-1], n_cols)
    col_map[torch.arange(len(columns)), torch.tensor(columns)] = 1.0
    row_map = torch.zeros(n_rows, probs.shape[-2])
    row_map[torch.tensor(rows), torch.arange(len(rows))] = 1.0
    row_map = row_map / row_map.sum(dim=1, keepdim=True)
    return row_map @ probs @ col_map


@torch.no_grad()
def cross_attention_maps(model: nn.Module, tokenizer: Tokenizer, source: str,
                         target: str | None = None, *, layers: Sequence[int] | None = None,
                         max_source_length: int = 128, max_target_length: int = MAX_NEW_TOKENS,
                         **generation: Any) -> AttentionMaps:
    """Word-level cross-attention of ``source`` → ``target`` (default: the model's own
    translation, made with ``generation`` options such as ``num_beams``).

    ``model`` is an encoder–decoder with a ``forward(..., output_attentions=...)`` that returns
    ``cross_attentions`` (one (B, N, T, S) tensor per decoder layer), as
    :class:`~bertkit.model.encoder_decoder.EncoderDecoderModel` does.
    """
    if not source.strip():
        raise UsageError("the source text is empty; expected a sentence to translate")
    if target is None:
        (target,) = translate(model, tokenizer, [source], max_source_length=max_source_length,
                              max_new_tokens=max_target_length, **generation)
        if not target.strip():
            raise UsageError(f"the model translated {source!r} to nothing; no alignment to "
                             "show (train it longer, or pass target=)")
    source_ids, source_words, columns = _words(tokenizer, source, max_source_length)
    target_ids, target_words, target_groups = _words(tokenizer, target, max_target_length + 1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = model(torch.tensor([source_ids], device=device),
                    torch.ones(1, len(source_ids), dtype=torch.long, device=device),
                    decoder_input_ids=torch.tensor([target_ids[:-1]], device=device),
                    output_attentions=True)
    finally:
        model.train(was_training)
    cross = out.cross_attentions
    wanted = range(len(cross)) if layers is None else [i % len(cross) for i in layers]
    # decoder position t predicts target token t + 1: label the rows by the predicted token
    rows = target_groups[1:]
    first = min(rows)
    rows = [r - first for r in rows]
    probabilities = {i: _merge(cross[i][0].float().cpu(), rows, columns) for i in wanted}
    return AttentionMaps(text=f"{source} → {target}", tokens=target_words[first:],
                         probabilities=probabilities, num_layers=len(cross),
                         num_heads=cross[0].shape[1], key_tokens=source_words,
                         row_label="target word (predicted)", column_label="source word")


def mean_over_heads(maps: AttentionMaps) -> AttentionMaps:
    """The same maps with the heads averaged into one (the usual single alignment picture)."""
    return AttentionMaps(text=maps.text, tokens=maps.tokens,
                         probabilities={i: p.mean(dim=0, keepdim=True)
                                        for i, p in maps.probabilities.items()},
                         num_layers=maps.num_layers, num_heads=1, key_tokens=maps.key_tokens,
                         row_label=maps.row_label, column_label=maps.column_label,
                         heads_averaged=maps.heads_averaged or maps.num_heads)


@dataclass
class AlignmentFiles:
    """What :func:`write_alignment` drew: the ``source → target`` line and the files written
    (``png`` is ``None`` when not asked for or without matplotlib)."""

    text: str
    html: Path | None
    png: Path | None

    @property
    def files(self) -> list[Path]:
        return [path for path in (self.html, self.png) if path is not None]


def write_alignment(model: nn.Module, tokenizer: Tokenizer, source: str, target: str | None,
                    html: str | Path | None, png: str | Path | None = None, *,
                    layer: int = -1, title: str = "bertkit cross-attention",
                    **options: Any) -> AlignmentFiles:
    """The usual alignment picture of one translation: the HTML viewer (every layer and head)
    and, when matplotlib is there, a PNG heatmap of ``layer`` with the heads averaged; either
    file may be left out (``None``). ``options`` go to :func:`cross_attention_maps` (lengths,
    generation settings)."""
    if html is None and png is None:
        raise UsageError("nothing to write: give an HTML and/or a PNG path")
    maps = cross_attention_maps(model, tokenizer, source, target, **options)
    if html is not None:
        write_attention_html(maps, html, title=title, layer=layer)
    drawn = None
    if png is not None and viz_available():
        plot_attention(mean_over_heads(maps), layer, 0, png)
        drawn = Path(png)
    return AlignmentFiles(maps.text, None if html is None else Path(html), drawn)
