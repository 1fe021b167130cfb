"""Head statistics as files: a JSON table, one layer × head heatmap per statistic (PNG, with
matplotlib, the ``viz`` extra) and a self-contained HTML page with the same heatmaps.

The HTML view is built here as coloured tables (no script, nothing fetched), so it works
without matplotlib; the PNGs are skipped with one line when matplotlib is absent.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from bertkit._fileio import atomic_write, write_json, write_text
from bertkit.analysis.heads import HeadStatistics
from bertkit.inference.attention_maps import figures_skipped_note, viz_available

LABELS = {
    "cls": "[CLS]", "sep": "[SEP]", "previous": "previous token", "next": "next token",
    "punctuation": "punctuation", "self": "itself", "same_word": "same word (other pieces)",
    "repeated": "earlier copy of its token",
}


def panels(stats: HeadStatistics) -> dict[str, tuple[str, np.ndarray, float]]:
    """Every heatmap: file stem → (title, (L, N) values, colour-scale maximum)."""
    out = {f"attention-{name}": (f"mean attention to {LABELS[name]}", values, 1.0)
           for name, values in stats.attention.items()}
    out |= {f"top-{name}": (f"top attention is {LABELS[name]} (share of tokens)", values, 1.0)
            for name, values in stats.top.items()}
    finite = stats.entropy[np.isfinite(stats.entropy)]
    out["entropy"] = ("attention entropy (nats)", stats.entropy,
                      float(finite.max()) if finite.size else 1.0)
    return out


def plot_heatmap(title: str, values: np.ndarray, vmax: float, path: str | Path) -> None:
    """One layer × head heatmap, each cell labelled with its value, written as PNG."""
    from matplotlib.figure import Figure

    layers, heads = values.shape
    figure = Figure(figsize=(1.0 + 0.55 * heads, 1.0 + 0.45 * layers), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0.0, vmax=vmax,
                        aspect="auto")
    for (layer, head), value in np.ndenumerate(values):
        if math.isfinite(value):
            axes.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if value < 0.6 * vmax else "black")
    axes.set_xticks(range(heads))
    axes.set_yticks(range(layers))
    axes.set_xlabel("head")
    axes.set_ylabel("layer")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes)
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=120),
                 binary=True)


def _colour(value: float, vmax: float) -> str:
    """viridis-like stops, as the attention-map page uses."""
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    x = max(0.0, min(1.0, value / vmax if vmax else 0.0)) * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    f = x - i
    rgb = (round(a + f * (b - a)) for a, b in zip(stops[i], stops[i + 1], strict=True))
    return "rgb({},{},{})".format(*rgb)


def heads_html(stats: HeadStatistics, title: str) -> str:
    """A page with every heatmap as a coloured table and the best heads per relation."""
    sections = []
    for stem, (caption, values, vmax) in panels(stats).items():
        header = "".join(f"<th>{h}</th>" for h in range(values.shape[1]))
        body = []
        for layer, row in enumerate(values):
            cells = "".join(
                '<td class="pruned">pruned</td>' if not math.isfinite(v) else
                f'<td style="background:{_colour(v, vmax)};color:'
                f'{"#fff" if v < 0.6 * vmax else "#000"}">{v:.2f}</td>' for v in row)
            body.append(f"<tr><th>layer {layer}</th>{cells}</tr>")
        sections.append(f'<section id="{stem}"><h2>{html.escape(caption)}</h2><table>'
                        f"<tr><th></th>{header}</tr>{''.join(body)}</table></section>")
    best = "".join(
        f"<li><b>{html.escape(LABELS[name])}</b>: "
        + ", ".join(f"L{layer}-H{head} ({score:.2f})"
                    for layer, head, score in stats.best_heads(name)) + "</li>"
        for name in stats.top)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }}
table {{ border-collapse: collapse; font-size: 12px; margin-bottom: 1rem; }}
td, th {{ padding: 3px 6px; text-align: center; border: 1px solid #fff; }}
td.pruned {{ background: #ddd; color: #777; }}
h2 {{ font-size: 1rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{stats.sentences} sentences, {stats.tokens} tokens of {html.escape(stats.corpus)}.
Rows are layers, columns heads (counted from 0).</p>
<h2>Heads whose top attention matches each relation most often</h2><ul>{best}</ul>
{''.join(sections)}
</body></html>
"""


def write_head_report(stats: HeadStatistics, out: str | Path, *,
                      title: str = "bertkit attention heads") -> list[Path]:
    """Write ``heads.json``, ``heads.html`` and one PNG per statistic into ``out``; the paths
    written. Without matplotlib the PNGs are skipped and the note says so once."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "heads.json", out / "heads.html"]
    write_json(written[0], stats.to_json())
    write_text(written[1], heads_html(stats, title))
    if not viz_available():
        print(figures_skipped_note())
        return written
    for stem, (caption, values, vmax) in panels(stats).items():
        path = out / f"heads-{stem}.png"
        plot_heatmap(caption, values, vmax, path)
        written.append(path)
    return written
