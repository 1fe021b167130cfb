"""A probe run's outputs: a text table, ``probe.json``, ``probe.png`` and ``probe.html``.

Every accuracy is shown next to its control accuracy and selectivity (a probe result without
its control is not shown), and the baselines sit in the same table. The PNG needs matplotlib
(the ``viz`` extra); without it the figure is skipped with one line and the HTML view shows
the table alone.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bertkit._fileio import atomic_write, write_json, write_text
from bertkit.analysis.probing import RANDOM, ProbeResult
from bertkit.inference.attention_maps import figures_skipped_note, viz_available


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def table_rows(result: ProbeResult) -> list[list[str]]:
    """[model, layer, accuracy %, control %, selectivity pts] rows, baselines last."""
    rows = [[curve.name, str(s.layer), _pct(s.accuracy), _pct(s.control_accuracy),
             _pct(s.selectivity)] for curve in result.curves for s in curve.scores]
    rows += [[f"baseline: {name}", "-", _pct(value), "-", "-"]
             for name, value in result.baselines.items()]
    return rows


HEADER = ["model", "layer", "accuracy %", "control %", "selectivity"]


def format_table(result: ProbeResult) -> str:
    """The table as aligned text, with a heading that says what was measured on what."""
    rows = [HEADER, *table_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [f"probe {result.task} ({result.level} level, {result.pooling} pooling, "
             f"{len(result.label_names)} classes): held-out accuracy on {result.test_items:,} "
             f"items, probes trained on {result.train_items:,}",
             f"data: {result.source}"]
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    skipped = [f"{c.name}: {c.skipped_sentences}" for c in result.curves if c.skipped_sentences]
    if skipped:
        lines.append("sentences longer than the model, skipped: " + ", ".join(skipped))
    return "\n".join(lines)


def plot_probe(results: list[ProbeResult], path: str | Path) -> None:
    """Accuracy (solid) and selectivity (lower panel) against layer, one line per model,
    random-init models dashed, baselines as horizontal lines; one column per result."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * len(results), 6.4))
    axes = figure.subplots(2, len(results), squeeze=False, sharex="col")
    for column, result in enumerate(results):
        top, bottom = axes[0][column], axes[1][column]
        for curve in result.curves:
            layers = [s.layer for s in curve.scores]
            style = "--" if curve.kind == RANDOM else "-"
            line, = top.plot(layers, [100 * s.accuracy for s in curve.scores], style,
                             marker="o", label=curve.name)
            bottom.plot(layers, [100 * s.selectivity for s in curve.scores], style,
                        marker="o", color=line.get_color())
        for (name, value), color in zip(result.baselines.items(), ("grey", "black"),
                                        strict=False):
            top.axhline(100 * value, color=color, linestyle=":", label=f"{name} baseline")
        top.set_title(f"{result.task} ({result.pooling})")
        top.set_ylabel("held-out accuracy %")
        bottom.set_ylabel("selectivity (accuracy − control), points")
        bottom.set_xlabel("layer (0 = embeddings)")
        top.legend(fontsize=7)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    figure.tight_layout()
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=120),
                 binary=True)


def probe_html(result: ProbeResult, png: Path | None) -> str:
    """A self-contained page: the figure (embedded) and the table."""
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table_rows(result))
    figure = ""
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        figure = f'<img alt="accuracy against layer" src="data:image/png;base64,{data}">'
    heading = html.escape(format_table(result).splitlines()[0])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>bertkit probe — {html.escape(result.task)}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
            "td:first-child{text-align:left}img{max-width:100%}</style></head><body>"
            f"<h1>What the layers know: {html.escape(result.task)}</h1><p>{heading}</p>"
            f"<p>data: {html.escape(result.source)}</p>{figure}"
            f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
            "<p>selectivity = accuracy − control accuracy (Hewitt &amp; Liang 2019), in "
            "points.</p></body></html>\n")


def write_outputs(result: ProbeResult, out: str | Path, *, figures: bool = True) -> list[str]:
    """Write ``probe.json``, ``probe.png`` (when matplotlib is present), ``probe.html`` and
    ``probe.txt`` into ``out``; return lines saying what was written or skipped."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    write_json(out / "probe.json", result.to_json())
    write_text(out / "probe.txt", format_table(result) + "\n")
    png = None
    if figures and viz_available():
        png = out / "probe.png"
        plot_probe([result], png)
    elif figures:
        notes.append(figures_skipped_note())
    write_text(out / "probe.html", probe_html(result, png))
    notes.append(f"wrote {', '.join(sorted(p.name for p in out.glob('probe.*')))} in {out}")
    return notes

