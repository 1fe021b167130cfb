"""The attention-head part of the demo report's "What the layers know" section (issue 17 §3).

:func:`probe_heads` is the demo step: head statistics (Clark et al. 2019) of all-MiniLM-L6-v2
over the first :data:`SENTENCES` sentences of the Brown corpus (fetched for the probes
anyway; the first file, ``ca01``, is read, not the corpus), cut to :data:`MAX_LENGTH` pieces.
That fixed subset bounds the step's time (MiniLM takes ~1 s per 16 sentences of 64 tokens on
one loaded core, a few seconds of the demo's minutes), and it is what the README's
measurement read too. Everything the report shows comes from ``summary["heads"]``:

1. :func:`heads_summary` gives the JSON-ready statistics of an engine over sentences;
2. :func:`plot_heads_section` draws one layer × head heatmap of a statistic from them;
3. :func:`heads_section_html` gives the section's HTML around the ``<img>`` tag the report
   made for the PNG (an empty string without matplotlib).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.analysis.heads import head_statistics
from bertkit.analysis.heads_report import LABELS, plot_heatmap
from bertkit.demo.data_steps import ENCODER
from bertkit.demo.run import DemoRun
from bertkit.inference.attention_maps import viz_available
from bertkit.inference.engine import Engine
from bertkit.resources.artifacts import fetch
from bertkit.resources.brown import brown_sentences

DEFAULT_STATISTIC = "attention-cls"
"""Where a head parks attention it has no use for: [SEP] in BERT-base's middle layers (Clark
et al.), [CLS] in MiniLM's (see the README); the section's text gives both means."""
SENTENCES, MAX_LENGTH = 64, 64
FIGURE = "layers/heads.png"  # in the demo output, beside the probes' figure


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


def _mean(part: dict[str, Any], target: str) -> float:
    """The mean over every head that is left (pruned heads are null)."""
    values = [v for layer in part["attention"][target] for v in layer if v is not None]
    return float(np.mean(values))


def heads_section_html(part: dict[str, Any], image: str) -> str:
    """The section body: what was measured, the heatmap, the best heads per relation."""
    best = "".join(
        f"<li>{html.escape(LABELS[name])}: "
        + ", ".join(f"layer {h['layer']} head {h['head']} ({h['accuracy']:.2f})"
                    for h in heads) + "</li>"
        for name, heads in part["best_heads"].items())
    title, _, _ = _values(part, part.get("statistic", DEFAULT_STATISTIC))
    return (f"<p>Attention heads of {html.escape(part['model'])} over {part['sentences']} "
            f"sentences ({part['tokens']:,} tokens) of {html.escape(part['corpus'])}, after "
            f"Clark et al. 2019. Averaged over all heads, a token gives "
            f"{_mean(part, 'cls'):.2f} of its attention to [CLS] and {_mean(part, 'sep'):.2f} "
            f"to [SEP]. The heatmap: {html.escape(title)}, layer × head. Below: the heads "
            f"whose top attention most often is each relation (share of tokens).</p>"
            f"{image}<ul>{best}</ul>")


def probe_heads(run: DemoRun) -> str:
    """The demo step: ``summary["heads"]`` and, with matplotlib, :data:`FIGURE`."""
    sentences = [" ".join(s.words) for s in islice(brown_sentences(), SENTENCES)]
    engine = Engine.from_pretrained(fetch(ENCODER, quiet=True), device="cpu", truncate=True,
                                    max_length=MAX_LENGTH, batch_size=16)
    part = heads_summary(engine, sentences, max_sentences=SENTENCES)
    part |= {"model": "all-MiniLM-L6-v2", "statistic": DEFAULT_STATISTIC,
             "corpus": f"the Brown corpus (its first {len(sentences)} sentences, cut to "
                       f"{MAX_LENGTH} pieces)"}
    if viz_available():  # without matplotlib the report names the extra once
        (run.out / FIGURE).parent.mkdir(parents=True, exist_ok=True)
        plot_heads_section(part, run.out / FIGURE)
    run.summary["heads"] = part
    shown = "; ".join(f"{LABELS[name]} L{heads[0]['layer']}-H{heads[0]['head']} "
                      f"({heads[0]['accuracy']:.2f})" for name in ("previous", "next", "cls")
                      if (heads := part["best_heads"][name]))
    return (f"head statistics of all-MiniLM-L6-v2 over {part['sentences']} Brown sentences "
            f"({part['tokens']:,} tokens); top attention is {shown}")
