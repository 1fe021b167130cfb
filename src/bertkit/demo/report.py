"""The demo's report: PNG figures (matplotlib, the ``viz`` extra), one self-contained
``report.html`` (figures embedded as base64, no script, nothing fetched) and the terminal
summary. Everything shown comes from the run's ``summary`` (``summary.json``), so the report
states only what the run measured.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bertkit import _fileio
from bertkit.demo.heads_section import FIGURE as HEADS_FIGURE
from bertkit.demo.heads_section import heads_section_html
from bertkit.inference.attention_maps import (
    _figure_class,
    _save_png,
    figures_skipped_note,
    viz_available,
)

SECTIONS = ("Run", "Pretraining", "Fine-tuning on Reuters R8", "Fill-mask",
            "Sentence similarity", "Attention", "What the layers know", "Measured vs claimed")
FIGURES = ("loss_curves.png", "mlm_accuracy.png", "confusion_matrix.png", "attention.png",
           "layers/layers.png", HEADS_FIGURE)
NAMES = {"small": "small BERT (pretrained here)", "minilm": "all-MiniLM-L6-v2"}


# --------------------------------------------------------------------------- figures


def _smooth(values: Sequence[float], width: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    data = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(data, 0, 0.0))
    index = np.arange(1, len(data) + 1)
    return (sums[index] - sums[np.maximum(0, index - width)]) / np.minimum(index, width)


def plot_losses(summary: dict[str, Any], path: Path) -> None:
    """Left: pretraining losses per logged step (total, MLM, NSP) and the held-out MLM loss.
    Right: each fine-tuning step's loss, raw and smoothed."""
    figure = _figure_class()(figsize=(12, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    log = summary["pretrain"]["train_log"]
    steps = [r["step"] for r in log]
    with_nsp = bool(log) and all("nsp_loss" in r for r in log)  # else the total is the MLM loss
    for key, label in (("loss", "total (MLM + NSP)"), ("mlm_loss", "MLM"), ("nsp_loss", "NSP")):
        if all(key in r for r in log) and (with_nsp or key == "mlm_loss"):
            left.plot(steps, [r[key] for r in log], label=f"train {label}")
    history = summary["pretrain"]["history"]
    left.plot([h["step"] for h in history], [h["mlm_loss"] for h in history], "o--",
              label="held-out MLM")
    left.set(title="Pretraining loss", xlabel="step", ylabel="cross-entropy")
    left.legend()
    for name, run in summary["finetune"].items():
        losses = run["train_losses"]
        x = np.arange(1, len(losses) + 1)
        line = right.plot(x, losses, alpha=0.3)[0]
        right.plot(x, _smooth(losses, max(1, len(losses) // 10)), color=line.get_color(),
                   label=NAMES[name])
    right.set(title="Fine-tuning loss on Reuters R8 (faint: per step)", xlabel="step",
              ylabel="cross-entropy")
    right.legend()
    _save_png(figure, path)


def plot_mlm_accuracy(summary: dict[str, Any], path: Path) -> None:
    """Held-out MLM and NSP accuracy at each evaluation, against their trivial baselines."""
    figure = _figure_class()(figsize=(7.5, 4.2), layout="constrained")
    axes = figure.subplots()
    history = summary["pretrain"]["history"]
    steps = [h["step"] for h in history]
    axes.plot(steps, [h["mlm_accuracy"] for h in history], "o-", label="MLM accuracy")
    if all("content_accuracy" in h for h in history):
        axes.plot(steps, [h["content_accuracy"] for h in history], "s-",
                  label="MLM accuracy, content tokens")
    axes.plot(steps, [h["unigram_baseline"] for h in history], "--",
              label="MLM: always the most frequent token")
    if all("nsp_accuracy" in h for h in history):
        axes.plot(steps, [h["nsp_accuracy"] for h in history], "s-", label="NSP accuracy")
        axes.axhline(0.5, linestyle=":", color="grey", label="NSP: chance")
    axes.set(title="Held-out accuracy during pretraining", xlabel="step", ylabel="accuracy",
             ylim=(0, 1))
    axes.legend()
    _save_png(figure, path)


def plot_confusion(summary: dict[str, Any], path: Path) -> None:
    """Both fine-tuned models' confusion matrices on the test slice (counts in the cells)."""
    runs = summary["finetune"]
    figure = _figure_class()(figsize=(6.2 * len(runs), 5.4), layout="constrained")
    for axes, (name, run) in zip(np.atleast_1d(figure.subplots(1, len(runs))), runs.items(),
                                 strict=True):
        matrix = np.asarray(run["confusion_matrix"])
        labels = run["labels"]
        axes.imshow(matrix, cmap="Blues")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > threshold else "black")
        axes.set(title=f"{NAMES[name]}\naccuracy {run['accuracy']:.3f}", xlabel="predicted",
                 ylabel="true")
    _save_png(figure, path)


# --------------------------------------------------------------------------- HTML


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(out: Path, name: str, alt: str, width: int | None = None) -> str:
    """The figure inline, or nothing when it was not drawn (no ``viz`` extra)."""
    if not (out / name).is_file():
        return ""
    data = base64.b64encode((out / name).read_bytes()).decode("ascii")
    style = f' style="width: {width}px"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{style}>'


def _layers(out: Path, layers: dict[str, Any]) -> str:
    """The probing section: per-layer POS accuracy and selectivity (accuracy minus the control
    task's, Hewitt & Liang 2019) of each model beside a random-init model of its shape."""
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in layers["notes"])
    return (f"<p>A linear probe per layer predicts each word's part of speech (Brown corpus, "
            f"coarse tags, {layers['train_items']:,} training / {layers['test_items']:,} held-out "
            f"words, split by document) from the frozen model's vectors; the control task gives "
            f"each word type a fixed random tag. Baselines: majority tag "
            f"{_pct(layers['baselines']['majority'])}, most frequent tag per word "
            f"{_pct(layers['baselines']['per-word'])}.</p>"
            f"<pre>{html.escape(layers['table'])}</pre>" + notes
            + _image(out, "layers/layers.png", "probe accuracy per layer", 640))


def _heads(out: Path, part: dict[str, Any]) -> str:
    """The attention-head part of the section: one layer × head heatmap, the best heads."""
    return heads_section_html(part, _image(out, HEADS_FIGURE, "head statistics heatmap", 640))


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _claims(summary: dict[str, Any]) -> str:
    """What the numbers are, and what they are not."""
    pre, test = summary["pretrain"], summary["test"]
    final = pre["eval"] or {}
    tokens = pre["steps"] * pre["batch_size"] * pre["seq_len"]
    items = [
        f"<b>Measured here:</b> held-out MLM accuracy {final.get('mlm_accuracy', math.nan):.3f} "
        f"on {pre['eval_examples']} held-out sequences (documents kept out of pretraining, "
        f"masked once with a fixed seed) against {final.get('unigram_baseline', math.nan):.3f} "
        f"for always predicting the most frequent masked token, and "
        f"{final.get('content_accuracy', math.nan):.3f} on the masked content tokens (those "
        "outside the 100 most frequent, which function words cannot earn)"
        + (f"; NSP accuracy {final['nsp_accuracy']:.3f} against 0.5 for chance."
           if "nsp_accuracy" in final else "."),
        f"<b>Measured here:</b> each classifier was trained for one pass over a class-stratified "
        f"subset of the R8 training split and scored once on the same {test['examples']:,} "
        f"test documents (evenly spaced over the {test['of']:,} of the test split); no choice "
        f"was made by looking at test scores. Always answering "
        f"'{test['majority_label']}' scores {test['majority_accuracy']:.3f}. "
        f"{test['also_in_train']} of these test texts also occur verbatim in the R8 training "
        "split (duplicate notices in Reuters itself); they were not removed.",
        f"<b>Not claimed:</b> the small BERT saw about {tokens / 1e6:.1f} M tokens in "
        f"{pre['steps']:,} steps of a {summary['settings']['minutes']:g}-minute CPU budget. "
        "Its numbers show that pretraining and fine-tuning work end to end on real data; they "
        "are not comparable with published BERT results, which come from days of accelerator "
        "time on billions of words. all-MiniLM-L6-v2 was pretrained elsewhere on far more data; "
        "its lead over the small model measures that difference, not a property of bertkit.",
        "<b>Varies between runs:</b> steps are sized from the measured speed of this machine "
        "and stopped by the time budget, so a busier or faster machine trains more or fewer "
        "steps and gets other numbers. Seeds are fixed; data slices are deterministic.",
        "<b>Exact elsewhere:</b> bertkit's outputs equal the transformers reference within "
        "float tolerance (tests/compat); those are tests, not numbers from this run.",
    ]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def render_html(out: Path, summary: dict[str, Any]) -> str:
    """The whole report as one HTML string (figures read from ``out`` and embedded)."""
    pre, test, model = summary["pretrain"], summary["test"], summary["pretrain"]["model"]
    final = pre["eval"] or {}
    sections = {
        "Run": (
            f"<p>{len(summary['steps'])} steps in {summary['total_seconds']:.0f} s of a "
            f"{summary['settings']['minutes']:g}-minute budget, {summary['settings']['threads']}"
            f" PyTorch thread(s), {os.cpu_count()} CPU core(s), seed "
            f"{summary['settings']['seed']}, bertkit {summary['bertkit']}.</p>"
            + _table(("step", "seconds", "what happened"),
                     [(s["name"], f"{s['seconds']:.1f}", s["note"]) for s in summary["steps"]])),
        "Pretraining": (
            f"<p>A BERT with {model['layers']} layers, hidden size {model['hidden']}, "
            f"{model['heads']} heads and a {model['vocab']:,}-piece WordPiece vocabulary "
            f"({model['parameters'] / 1e6:.2f} M parameters), trained from random weights with "
            f"{pre.get('objective', 'masked-LM + next-sentence prediction')} on the Reuters "
            f"R52 training split: "
            f"{pre['steps']:,} steps (planned {pre['planned_steps']:,}, stopped by "
            f"{pre['stop_reason'].replace('_', ' ')}) of {pre['batch_size']} sequences × "
            f"{pre['seq_len']} tokens, {pre['train_examples']:,} training sequences.</p>"
            + _table(("held-out metric", "value"), [
                ("MLM accuracy", f"{final.get('mlm_accuracy', math.nan):.4f}"),
                ("MLM accuracy on content tokens (outside the 100 most frequent)",
                 f"{final.get('content_accuracy', math.nan):.4f}"),
                ("unigram baseline", f"{final.get('unigram_baseline', math.nan):.4f}"),
                ("MLM perplexity", f"{final.get('perplexity', math.nan):.1f}"),
                *([("NSP accuracy", f"{final['nsp_accuracy']:.4f}")]
                  if "nsp_accuracy" in final else [])])
            + _image(out, "loss_curves.png", "loss curves")
            + _image(out, "mlm_accuracy.png", "held-out MLM accuracy", 640)),
        "Fine-tuning on Reuters R8": (
            f"<p>Eight-class news topic classification, scored on {test['examples']:,} of the "
            f"{test['of']:,} test documents. Majority class '{test['majority_label']}': "
            f"{_pct(test['majority_accuracy'])}.</p>"
            + _table(("model", "training documents", "steps", "accuracy", "macro-F1", "MCC"),
                     [(run["model"], f"{run['train_examples']:,}",
                       f"{run['steps']}/{run['planned_steps']}", _pct(run["accuracy"]),
                       f"{run['macro_f1']:.3f}", f"{run['mcc']:.3f}")
                      for run in summary["finetune"].values()])
            + _image(out, "confusion_matrix.png", "confusion matrices")),
        "Fill-mask": (
            "<p>The small BERT pretrained above, top 5 for each [MASK] (the corpus is "
            "lowercase with numbers and punctuation removed, so are these texts). The texts and "
            "their original words were fixed before any run; the rank is the original word's "
            "among all whole-word candidates (1 = the model's first choice).</p>"
            + _table(("text", "original word (rank)", "top-5 (probability)"),
                     [(r["text"], f"{r['answer']} ({r['answer_rank'] or 'not in vocabulary'})",
                       ", ".join(f"{w} ({p:.3f})" for w, p in r["candidates"]))
                      for r in summary["fill_mask"]])),
        "Sentence similarity": (
            "<p>all-MiniLM-L6-v2 as released (not fine-tuned), mean-pooled sentence vectors, "
            "cosine similarity.</p>"
            + _table(("", *(f"[{i}]" for i in range(len(summary["similarity"]["sentences"])))),
                     [(f"[{i}] {s}", *(f"{v:.3f}" for v in row)) for i, (s, row) in enumerate(
                         zip(summary["similarity"]["sentences"],
                             summary["similarity"]["matrix"], strict=True))])),
        "Attention": (
            f"<p>all-MiniLM-L6-v2 on “{html.escape(summary['attention']['text'])}”: layer "
            f"{summary['attention']['layer']}, head {summary['attention']['head']}: of all "
            f"heads, the one in which “it” attends to “cat” most above the other tokens' mean "
            f"(“it” → “cat” {summary['attention']['it_to_cat']:.2f}, "
            f"{summary['attention']['lift']:+.2f} against the rest). One head chosen this way "
            "shows what the model computes, not that it resolves pronouns. Every layer and head: "
            '<a href="attention.html">attention.html</a>.</p>'
            + _image(out, "attention.png", "attention heatmap", 640)),
        "What the layers know": _layers(out, summary["layers"]) + _heads(out, summary["heads"]),
        "Measured vs claimed": _claims(summary),
    }
    body = "".join(f'<section><h2>{html.escape(title)}</h2>{content}</section>'
                   for title, content in sections.items())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _PAGE.replace("__STAMP__", stamp).replace("__BODY__", body)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bertkit demo report</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
img { max-width: 100%; display: block; margin: 1em 0; }
.stamp { color: #666; }
</style>
</head>
<body>
<h1>bertkit demo</h1>
<p class="stamp">Written __STAMP__ by <code>bertkit demo</code>.</p>
__BODY__
</body>
</html>
"""


# --------------------------------------------------------------------------- entry points


def write_report(out: Path, summary: dict[str, Any]) -> str:
    """Draw the figures (when matplotlib is installed) and write ``report.html`` into ``out``;
    return a one-line note, which names the ``viz`` extra when the figures were skipped."""
    if not viz_available():
        _fileio.write_text(out / "report.html", render_html(out, summary))
        return f"{out / 'report.html'}; {figures_skipped_note()}"
    plot_losses(summary, out / "loss_curves.png")
    plot_mlm_accuracy(summary, out / "mlm_accuracy.png")
    plot_confusion(summary, out / "confusion_matrix.png")
    _fileio.write_text(out / "report.html", render_html(out, summary))
    return f"{out / 'report.html'} with {len(FIGURES)} figures"


def render_summary(summary: dict[str, Any], out: Path) -> str:
    """The concise terminal summary."""
    pre, test = summary["pretrain"], summary["test"]
    final = pre["eval"] or {}
    lines = [f"bertkit demo: {summary['total_seconds']:.0f} s "
             f"(budget {summary['settings']['minutes']:g} min)", ""]
    lines += [f"  {s['seconds']:7.1f} s  {s['name']}" for s in summary["steps"]]
    lines += ["", f"pretraining ({pre['steps']:,} steps): held-out MLM accuracy "
                  f"{final.get('mlm_accuracy', math.nan):.3f} (unigram baseline "
                  f"{final.get('unigram_baseline', math.nan):.3f}), content tokens "
                  f"{final.get('content_accuracy', math.nan):.3f}"
                  + (f", NSP accuracy {final['nsp_accuracy']:.3f}"
                     if "nsp_accuracy" in final else ""),
              f"Reuters R8, {test['examples']:,} test documents (majority class "
              f"{test['majority_accuracy']:.3f}):"]
    lines += [f"  {run['model']:<30} accuracy {run['accuracy']:.3f}  macro-F1 "
              f"{run['macro_f1']:.3f}  ({run['train_examples']:,} training documents, "
              f"{run['steps']} steps)" for run in summary["finetune"].values()]
    first = summary["fill_mask"][0]
    lines += [f"fill-mask: {first['text']!r} → "
              + ", ".join(f"{w} {p:.2f}" for w, p in first["candidates"][:3]),
              "", f"report: {out / 'report.html'}"]
    return "\n".join(lines)
