"""The attention-head part of the demo report's "What the layers know" section (issue 17 §3),
for the demo pipeline to wire in.

Contract, in the report's own style (everything shown comes from ``summary.json``):

1. :func:`heads_summary` runs once in the pipeline, on a model the demo already has (an
   :class:`~bertkit.inference.engine.Engine`) and a subset of a corpus it already fetched
   (``max_sentences`` bounds the time: MiniLM takes ~1 s per 16 sentences of 64 tokens on
   one loaded core). It returns a JSON-ready dict to store under ``summary["heads"][name]``.
2. :func:`plot_heads_section` draws one layer × head heatmap of ``statistic`` from that dict
   (matplotlib; the caller checks ``viz_available()`` as for its other figures).
3. :func:`heads_section_html` gives the section's HTML given the ``<img>`` tag the report
   made for the PNG (or an empty string without matplotlib).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.analysis.heads import head_statistics
from bertkit.analysis.heads_report import LABELS, plot_heatmap
from bertkit.inference.engine import Engine

DEFAULT_STATISTIC = "attention-sep"
"""Clark et al.'s most striking pattern: many middle-layer heads park their attention on
[SEP]."""


def heads_summary(engine: Engine, sentences: Sequence[str], *,
                  max_sentences: int = 200) -> dict[str, Any]:
    """Head statistics of ``engine``'s model over the first ``max_sentences`` sentences,
    as :meth:`~bertkit.analysis.heads.HeadStatistics.to_json` gives them."""
    return head_statistics(engine, list(sentences)[:max_sentences]).to_json()


def _values(part: dict[str, Any], statistic: str) -> tuple[str, np.ndarray, float]:
    kind, _, name = statistic.partition("-")
    if statistic == "entropy":
        values = np.array(part["entropy"], dtype=float)
        return "attention entropy (nats)", values, float(np.nanmax(values))
    table = part["attention" if kind == "attention" else "top_accuracy"][name]
    title = (f"mean attention to {LABELS[name]}" if kind == "attention"
             else f"top attention is {LABELS[name]}")
    return title, np.array(table, dtype=float), 1.0


def plot_heads_section(part: dict[str, Any], path: str | Path,
                       statistic: str = DEFAULT_STATISTIC) -> None:
    """One heatmap (``attention-<target>``, ``top-<target>`` or ``entropy``) as PNG."""
    title, values, vmax = _values(part, statistic)
    plot_heatmap(title, values, vmax, path)


def heads_section_html(part: dict[str, Any], image: str) -> str:
    """The section body: what was measured, the heatmap, the best heads per relation."""
    best = "".join(
        f"<li>{html.escape(LABELS[name])}: "
        + ", ".join(f"layer {h['layer']} head {h['head']} ({h['accuracy']:.2f})"
                    for h in heads) + "</li>"
        for name, heads in part["best_heads"].items())
    return (f"<p>Attention heads over {part['sentences']} sentences ({part['tokens']} "
            "tokens), after Clark et al. 2019: the heads whose top attention most often is "
            f"each relation.</p>{image}<ul>{best}</ul>")
