"""Attention maps: which tokens each token attends to, per layer and head, as numbers, a PNG
heatmap, a grid of every head of a layer, or a self-contained HTML page to browse them all.

Only the requested layers take the explicit attention path (the one that materialises the
(N, T, T) probabilities); the others stay on ``scaled_dot_product_attention``. Layers and heads
are numbered from 0; negative layer indices count from the end (-1 = last layer). Heads keep
the numbers of the unpruned layer: in a pruned model (``config.pruned_heads``) a layer's maps
hold only its remaining heads, ``head_ids`` says which, and asking for a removed head is an
error naming the heads that remain.

Plots use matplotlib, an optional extra (``pip install bertkit[viz]``), imported only here and
only when a plot is drawn; figures are built without pyplot, so no GUI backend or global state
is touched. The HTML view needs nothing but a browser: data, script and style are inline, and it
loads nothing from the network.

Shape legend: N heads, T tokens (query × key).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bertkit._fileio import atomic_write, write_text
from bertkit.errors import UsageError
from bertkit.inference.engine import Engine, as_engine
from bertkit.tokenization import Tokenizer


@dataclass
class AttentionMaps:
    """Attention probabilities of one text for the requested layers.

    Self-attention maps are square (``tokens`` on both axes). Cross-attention maps of an
    encoder–decoder (:mod:`bertkit.inference.alignment`) have target ``tokens`` as rows and
    source ``key_tokens`` as columns."""

    text: str
    tokens: list[str]
    probabilities: dict[int, Tensor]   # layer (0-based) → (N_l, T, K) float32, rows sum to 1
    num_layers: int
    num_heads: int                     # heads per layer before any pruning
    key_tokens: list[str] | None = None  # the columns when they are not ``tokens``
    row_label: str = "attending token (query)"
    column_label: str = "attended token (key)"
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)  # layer → removed heads
    heads_averaged: int = 0            # > 0: each layer's one "head" is the mean of this many

    @property
    def columns(self) -> list[str]:
        """The attended tokens (K): ``key_tokens`` when given, else ``tokens``."""
        return self.tokens if self.key_tokens is None else self.key_tokens

    def head_ids(self, layer: int) -> list[int]:
        """The head numbers (unpruned numbering) of ``probabilities[layer]``'s rows, in order."""
        removed = set(self.pruned_heads.get(self.layer_index(layer), ()))
        return [h for h in range(self.num_heads) if h not in removed]

    def layer_index(self, layer: int) -> int:
        """A layer number (negative from the end) → the 0-based index; must have been computed."""
        index = _resolve_layer(layer, self.num_layers)
        if index not in self.probabilities:
            raise UsageError(f"layer {layer} was not computed; these maps hold layers "
                             f"{sorted(self.probabilities)}")
        return index

    def head(self, layer: int, head: int) -> Tensor:
        """(T, T): row = attending token (query), column = attended token (key). ``head`` is
        numbered as in the unpruned layer (negative from the end)."""
        index = self.layer_index(layer)
        if isinstance(head, bool) or not isinstance(head, int) \
                or not -self.num_heads <= head < self.num_heads:
            raise UsageError(f"head {head!r} is out of range: the model has {self.num_heads} "
                             f"heads per layer (0..{self.num_heads - 1})")
        ids = self.head_ids(index)
        if head % self.num_heads not in ids:
            raise UsageError(f"head {head % self.num_heads} of layer {index} was pruned; the "
                             f"layer keeps heads {ids}")
        return self.probabilities[index][ids.index(head % self.num_heads)]


def _resolve_layer(layer: int, num_layers: int) -> int:
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise UsageError(f"layer {layer!r}; expected an int")
    if not -num_layers <= layer < num_layers:
        raise UsageError(f"layer {layer} is out of range for a model with {num_layers} layers "
                         f"(0..{num_layers - 1}, or -1..-{num_layers} from the end)")
    return layer % num_layers


def attention_maps(model: nn.Module | Engine, tokenizer: Tokenizer | None, text: str,
                   layers: int | Sequence[int] | None = None) -> AttentionMaps:
    """Attention probabilities of ``text`` for ``layers`` (``None``: every layer).

    ``model`` is any bertkit model (its ``.bert`` encoder runs) with its ``tokenizer``, or an
    :class:`Engine`. The text is encoded alone, so no padding enters the maps.
    """
    if not isinstance(text, str):
        raise UsageError(f"text must be a str, got {type(text).__name__}")
    engine = as_engine(model, tokenizer)
    encoder = getattr(engine.model, "bert", None)
    if encoder is None:
        raise UsageError(f"expected a bertkit model (with a .bert encoder), got "
                         f"{type(engine.model).__name__}")
    num_layers = len(encoder.layers)
    if layers is None:
        wanted = list(range(num_layers))
    else:
        wanted = [layers] if isinstance(layers, int) else list(layers)
        if not wanted:
            raise UsageError("no layers requested; pass layer indices or None for all")
    resolved = sorted({_resolve_layer(layer, num_layers) for layer in wanted})
    (row,) = engine.encode([text])
    ids = torch.tensor([row["input_ids"]], device=engine.device)                 # (1, T)
    with engine.run_context():
        out = encoder(ids, output_attentions=resolved)
    probabilities = {index: out.attentions[index][0].float().cpu() for index in resolved}
    config = engine.model.config
    return AttentionMaps(text=text,
                         tokens=engine.tokenizer.convert_ids_to_tokens(row["input_ids"]),
                         probabilities=probabilities, num_layers=num_layers,
                         num_heads=config.num_attention_heads,
                         pruned_heads={int(k): sorted(v) for k, v in
                                       (config.pruned_heads or {}).items() if v})


# ---------------------------------------------------------------------------- figures


VIZ_EXTRA = "pip install 'bertkit[viz]'"


def viz_available() -> bool:
    """Whether matplotlib imports: reports that draw figures as a side product (``audit all``,
    the demo) skip them without it instead of failing after the measurements are done."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figures_skipped_note() -> str:
    """The one line a report prints when it skipped its figures."""
    return f"figures skipped: matplotlib is not installed ({VIZ_EXTRA} adds them)"


def _figure_class() -> Any:
    """matplotlib's Figure, or a UsageError saying how to install the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"drawing attention maps needs matplotlib, an optional extra: "
                         f"{VIZ_EXTRA}") from None
    return Figure


def _save_png(figure: Any, path: str | Path) -> None:
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=150,
                                                     bbox_inches="tight"), binary=True)


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plot_attention(maps: AttentionMaps, layer: int, head: int,
                   path: str | Path | None = None) -> Any:
    """One head's map as a labelled heatmap (tokens on both axes, colour bar, title with layer
    and head); written to ``path`` as PNG when given. Returns the matplotlib Figure."""
    Figure = _figure_class()
    index = maps.layer_index(layer)
    probs = maps.head(layer, head).numpy()                                     # (T, K)
    rows, count = len(maps.tokens), len(maps.columns)
    width = min(max(4.0, 0.32 * count + 2.0), 40.0)
    height = min(max(4.0, 0.32 * rows + 2.0), 40.0)
    figure = Figure(figsize=(width + 1.2, height))
    axes = figure.add_subplot()
    image = axes.imshow(probs, cmap="viridis", vmin=0.0, vmax=1.0, aspect="equal")
    axes.set_xticks(range(count), maps.columns, rotation=90, fontsize=9)
    axes.set_yticks(range(rows), maps.tokens, fontsize=9)
    axes.set_xlabel(maps.column_label)
    axes.set_ylabel(maps.row_label)
    which = (f"mean of {maps.heads_averaged} heads" if maps.heads_averaged
             else f"head {head % maps.num_heads}")
    axes.set_title(f"layer {index}, {which}\n“{_short(maps.text)}”", fontsize=11)
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    bar.set_label("attention probability")
    if path is not None:
        _save_png(figure, path)
    return figure


def plot_heads(maps: AttentionMaps, layer: int, path: str | Path | None = None) -> Any:
    """Every head of one layer in a grid, on one shared colour scale; PNG when ``path``."""
    Figure = _figure_class()
    index = maps.layer_index(layer)
    probs = maps.probabilities[index].numpy()                                  # (N_l, T, K)
    ids = maps.head_ids(index)
    heads, count = probs.shape[0], max(len(maps.tokens), len(maps.columns))
    columns = math.ceil(math.sqrt(heads))
    rows = math.ceil(heads / columns)
    cell = min(max(2.5, 0.18 * count + 1.0), 10.0)
    figure = Figure(figsize=(columns * cell + 1.0, rows * cell + 0.8), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    labelled = count <= 40
    image = None
    for head in range(rows * columns):
        axes = grid[head // columns][head % columns]
        if head >= heads:
            axes.set_visible(False)
            continue
        image = axes.imshow(probs[head], cmap="viridis", vmin=0.0, vmax=1.0)
        axes.set_title(f"head {ids[head]}", fontsize=10)
        if labelled:
            axes.set_xticks(range(len(maps.columns)), maps.columns, rotation=90, fontsize=6)
            axes.set_yticks(range(len(maps.tokens)), maps.tokens, fontsize=6)
        else:
            axes.set_xticks([])
            axes.set_yticks([])
    kept = f"all {heads}" if heads == maps.num_heads else f"the {heads} remaining"
    figure.suptitle(f"layer {index}, {kept} heads — “{_short(maps.text)}”", fontsize=12)
    bar = figure.colorbar(image, ax=grid, fraction=0.02, pad=0.01)
    bar.set_label("attention probability")
    if path is not None:
        _save_png(figure, path)
    return figure


# ---------------------------------------------------------------------------- HTML


def attention_html(maps: AttentionMaps, *, title: str | None = None, layer: int | None = None,
                   head: int | None = None) -> str:
    """A self-contained page to browse every computed layer and head: a heatmap with token
    labels, hover read-outs, and thumbnails of all heads of the layer. Data is embedded as
    JSON (4 decimals); script and style are inline; nothing is fetched.

    The page opens on ``layer`` / ``head`` (default: the first computed layer, its first head
    that was not pruned); a URL fragment ``#layer=2&head=5`` opens another view, and the
    fragment follows the selection so a view can be shared. A pruned layer offers only its
    remaining heads, under their unpruned numbers.
    """
    first = maps.layer_index(layer) if layer is not None else min(maps.probabilities)
    if head is None:
        head = maps.head_ids(first)[0]
    maps.head(first, head)  # validates the head number
    data = {
        "initial": {"layer": first, "head": head % maps.num_heads},
        "text": maps.text,
        "tokens": maps.tokens,
        "keyTokens": maps.columns,
        "axes": f"rows: {maps.row_label} · columns: {maps.column_label}",
        "numHeads": maps.num_heads,
        "numLayers": maps.num_layers,
        "heads": {str(index): maps.head_ids(index) for index in sorted(maps.probabilities)},
        "layers": {str(index): [[[round(v, 4) for v in row] for row in head]
                                for head in probs.tolist()]
                   for index, probs in sorted(maps.probabilities.items())},
    }
    # "</" inside the JSON would end the <script> element early; "\/" is the same JSON string.
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    heading = html.escape(title or "bertkit attention maps")
    fills = {"__TITLE__": heading, "__DATA__": payload}
    return re.sub("__TITLE__|__DATA__", lambda m: fills[m.group(0)], _HTML)


def write_attention_html(maps: AttentionMaps, path: str | Path, *, title: str | None = None,
                         layer: int | None = None, head: int | None = None) -> None:
    """Write :func:`attention_html` to ``path`` atomically."""
    write_text(path, attention_html(maps, title=title, layer=layer, head=head))


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem;
         color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  #text { color: #555; margin: 0 0 1rem; font-style: italic; }
  .controls { display: flex; gap: 1.2rem; align-items: center; margin-bottom: 1rem;
              flex-wrap: wrap; }
  .controls label { font-weight: 600; }
  .main { display: flex; gap: 2rem; align-items: flex-start; flex-wrap: wrap; }
  table.map { border-collapse: collapse; font-size: 12px; }
  table.map td.cell { width: 22px; height: 22px; min-width: 22px; padding: 0;
                      border: 1px solid #fff; }
  table.map th { font-weight: 500; padding: 0 4px; white-space: nowrap; }
  table.map th.key { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
                     height: auto; padding: 4px 0; }
  table.map th.query { text-align: right; }
  table.map td.cell:hover { outline: 2px solid #e4572e; }
  #readout { min-height: 1.4em; margin: .6rem 0; font-family: ui-monospace, monospace; }
  .legend { display: flex; align-items: center; gap: .5rem; font-size: 12px; margin: .4rem 0; }
  .legend .bar { width: 180px; height: 12px; border: 1px solid #ccc; }
  .thumbs { display: grid; grid-template-columns: repeat(4, auto); gap: .6rem; }
  .thumb { cursor: pointer; text-align: center; font-size: 12px; }
  .thumb canvas { border: 2px solid transparent; image-rendering: pixelated; }
  .thumb.active canvas { border-color: #e4572e; }
  .axis { font-size: 12px; color: #555; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p id="text"></p>
<div class="controls">
  <span><label for="layer">Layer</label> <select id="layer"></select></span>
  <span><label for="head">Head</label> <select id="head"></select></span>
  <span class="axis" id="axes"></span>
</div>
<div class="legend"><span>0</span><div class="bar" id="legend"></div><span>1</span>
  <span class="axis">attention probability</span></div>
<div id="readout">hover a cell</div>
<div class="main">
  <div id="map"></div>
  <div><div class="axis">all heads of this layer (click to select)</div>
       <div class="thumbs" id="thumbs"></div></div>
</div>
<script type="application/json" id="attention-data">__DATA__</script>
<script>
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("attention-data").textContent);
  const tokens = data.tokens, keys = data.keyTokens;
  document.getElementById("axes").textContent = data.axes;
  const layers = Object.keys(data.layers).map(Number).sort((a, b) => a - b);
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function colour(v) {
    const x = Math.max(0, Math.min(1, v)) * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    const c = stops[i].map((s, k) => Math.round(s + f * (stops[i + 1][k] - s)));
    return "rgb(" + c.join(",") + ")";
  }
  const layerSelect = document.getElementById("layer");
  const headSelect = document.getElementById("head");
  const readout = document.getElementById("readout");
  document.getElementById("text").textContent = "\\u201c" + data.text + "\\u201d";
  document.getElementById("legend").style.background =
    "linear-gradient(to right," + stops.map(c => "rgb(" + c.join(",") + ")").join(",") + ")";
  for (const l of layers) { layerSelect.add(new Option("layer " + l, String(l))); }
  function fillHeads(layer, wanted) {  // a pruned layer offers only its remaining heads
    const ids = data.heads[layer];
    headSelect.replaceChildren();
    for (const h of ids) { headSelect.add(new Option("head " + h, String(h))); }
    headSelect.value = String(ids.includes(Number(wanted)) ? Number(wanted) : ids[0]);
  }

  function drawMap(matrix, layer, head) {
    const table = document.createElement("table");
    table.className = "map";
    const header = table.insertRow();
    header.appendChild(document.createElement("th"));
    for (const t of keys) {
      const th = document.createElement("th");
      th.className = "key"; th.textContent = t; header.appendChild(th);
    }
    matrix.forEach((row, q) => {
      const tr = table.insertRow();
      const th = document.createElement("th");
      th.className = "query"; th.textContent = tokens[q]; tr.appendChild(th);
      row.forEach((v, k) => {
        const td = tr.insertCell();
        td.className = "cell"; td.style.background = colour(v);
        td.title = tokens[q] + " \\u2192 " + keys[k] + ": " + v.toFixed(4);
        td.addEventListener("mouseenter", () => {
          readout.textContent = "layer " + layer + ", head " + head + ": " + tokens[q] +
            " \\u2192 " + keys[k] + " = " + v.toFixed(4);
        });
      });
    });
    const holder = document.getElementById("map");
    holder.replaceChildren(table);
  }

  function drawThumbs(layer, active) {
    const holder = document.getElementById("thumbs");
    holder.replaceChildren();
    const n = Math.max(tokens.length, keys.length), scale = Math.max(1, Math.floor(96 / n));
    data.layers[layer].forEach((matrix, position) => {
      const h = data.heads[layer][position];
      const box = document.createElement("div");
      box.className = "thumb" + (h === active ? " active" : "");
      const canvas = document.createElement("canvas");
      canvas.width = keys.length * scale; canvas.height = tokens.length * scale;
      const ctx = canvas.getContext("2d");
      matrix.forEach((row, q) => row.forEach((v, k) => {
        ctx.fillStyle = colour(v); ctx.fillRect(k * scale, q * scale, scale, scale);
      }));
      const label = document.createElement("div");
      label.textContent = "head " + h;
      box.append(canvas, label);
      box.addEventListener("click", () => { headSelect.value = String(h); render(); });
      holder.appendChild(box);
    });
  }

  function render() {
    const layer = layerSelect.value, head = Number(headSelect.value);
    drawMap(data.layers[layer][data.heads[layer].indexOf(head)], layer, head);
    drawThumbs(layer, head);
    history.replaceState(null, "", "#layer=" + layer + "&head=" + head);
    document.body.dataset.view = layer + "/" + head;
  }
  function fromHash() {
    const wanted = new URLSearchParams(location.hash.slice(1));
    const layer = wanted.get("layer"), head = wanted.get("head");
    if (layer !== null && layer in data.layers) { layerSelect.value = layer; }
    fillHeads(layerSelect.value, head !== null ? head : headSelect.value);
  }
  layerSelect.value = String(data.initial.layer);
  fillHeads(layerSelect.value, data.initial.head);
  fromHash();
  layerSelect.addEventListener("change", () => {
    fillHeads(layerSelect.value, headSelect.value); render();
  });
  headSelect.addEventListener("change", render);
  window.addEventListener("hashchange", () => { fromHash(); render(); });
  render();
})();
</script>
</body>
</html>
"""
