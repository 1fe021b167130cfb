"""The demo report's "What the layers know" section: POS probe curves on a small Brown subset.

:func:`layer_probes` is the hook the demo pipeline calls; it runs
:func:`bertkit.analysis.probe` (task ``pos-brown``, per-layer linear probes with their control
task, a random-init twin of each model, majority and per-word baselines) on a small evenly
spaced subset of Brown, within a time budget. Two caches keep that budget: the section beside
the figure (a second call with the same models costs nothing), and, with ``cache_dir``, each
model's own curves keyed by its files — a demo rerun removes its output folder and pretrains
a new small BERT, but all-MiniLM-L6-v2's files never change, so its curves are measured once
per machine and cost no budget after that.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bertkit import _fileio
from bertkit.analysis.linear_probe import ProbeSettings
from bertkit.analysis.probe_report import format_table, plot_probe
from bertkit.analysis.probing import ProbeResult, probe
from bertkit.analysis.tasks import ProbeTask, build_task
from bertkit.demo.budget import MIN_STEP_SECONDS
from bertkit.demo.data_steps import ENCODER
from bertkit.demo.run import DemoRun
from bertkit.inference.attention_maps import figures_skipped_note, viz_available
from bertkit.resources.artifacts import fetch

CACHE_NAME, FIGURE_NAME = "layers.json", "layers.png"
LAYERS_DIR = "layers"  # the step's folder in the demo output
DEMO_SETTINGS = ProbeSettings(epochs=4)


def _fingerprint(models: Mapping[str, Path], options: dict[str, Any]) -> str:
    """Changes when a model's files (size, mtime) or a probe option change."""
    parts: list[Any] = [options]
    for name, folder in sorted(models.items()):
        files = sorted(p for p in Path(folder).iterdir() if p.is_file())
        parts.append([name, [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _probe_model(name: str, folder: Path, task: Callable[[], ProbeTask], path: Path | None,
                 **options: Any) -> ProbeResult:
    """One model's probe result, from ``path`` when that cache file exists, else measured
    (and written there)."""
    if path is not None and path.is_file():
        return ProbeResult.from_json(_fileio.read_json(path))
    result = probe([folder], task(), names=[name], **options)
    if path is not None:
        _fileio.write_json(path, result.to_json())
    return result


def layer_probes(models: Mapping[str, str | Path], out_dir: str | Path, *,
                 brown: Path | None = None, max_train: int = 300, max_test: int = 100,
                 budget_seconds: float = 60.0, device: str | None = None,
                 random_baseline: bool = True,
                 cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Probe each model (report name → model directory) on Brown POS, layer by layer.

    Contract (what the demo report reads; everything JSON-ready, accuracies in 0..1):

    * ``task``, ``train_items`` / ``test_items`` (words), ``source``, ``baselines``
      (``{"majority": …, "per-word": …}``);
    * ``curves``: one dict per probed model and per random-init twin, in ``models`` order,
      each ``{"name", "kind" ("trained" | "random-init"), "layers", "accuracy", "control",
      "selectivity"}`` (lists aligned with ``layers``, 0 = embeddings);
    * ``table``: the text table; ``figure``: ``"layers.png"`` (in ``out_dir``) or ``None``;
    * ``notes``: lines for the reader (figure skipped, models left out for time);
    * ``seconds``: time spent now; ``cached``: True when read from ``out_dir/layers.json``;
      ``cached_models``: the models whose curves came from ``cache_dir``.

    Models are probed in order until ``budget_seconds`` is spent; one that would start after
    that is left out and named in ``notes`` (the run of a started model is not cut). A model
    whose curves are in ``cache_dir`` (keyed by its name, its files and the options) costs
    nothing and is always shown. The section is cached in ``out_dir/layers.json``, keyed by the
    models' files and the options.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = {name: Path(path) for name, path in models.items()}
    options = {"max_train": max_train, "max_test": max_test, "random": random_baseline,
               "settings": str(DEMO_SETTINGS), "brown": str(brown)}
    key = _fingerprint(folders, options)
    cache = out_dir / CACHE_NAME
    if cache.exists():
        cached = _fileio.read_json(cache)
        if cached.get("key") == key:
            return {**cached["section"], "cached": True, "cached_models": [], "seconds": 0.0}
    start = time.perf_counter()
    built: list[ProbeTask] = []

    def task() -> ProbeTask:  # built once, and only when a model is measured
        if not built:
            built.append(build_task("pos-brown", brown=brown, max_train=max_train,
                                    max_test=max_test))
        return built[0]

    results: list[ProbeResult] = []
    notes, cached_models, measured = [], [], False
    for name, folder in folders.items():
        path = (Path(cache_dir) / f"probe-{_fingerprint({name: folder}, options)[:24]}.json"
                if cache_dir is not None else None)
        hit = path is not None and path.is_file()
        if not hit and measured and time.perf_counter() - start > budget_seconds:
            notes.append(f"{name}: not probed, the {budget_seconds:.0f} s budget was spent")
            continue
        results.append(_probe_model(name, folder, task, path, device=device,
                                    random_baseline=random_baseline, settings=DEMO_SETTINGS,
                                    scratch=out_dir))
        measured |= not hit
        if hit:
            cached_models.append(name)
            notes.append(f"{name}: curves measured by an earlier demo run on this machine "
                         "(same model files and options), read from its cache")
    merged = results[0]
    for extra in results[1:]:
        merged.curves.extend(extra.curves)
    figure = None
    if viz_available():
        plot_probe([merged], out_dir / FIGURE_NAME)
        figure = FIGURE_NAME
    else:
        notes.append(figures_skipped_note())
    section = {
        "task": merged.task, "train_items": merged.train_items, "test_items": merged.test_items,
        "source": merged.source, "baselines": merged.baselines, "table": format_table(merged),
        "figure": figure, "notes": notes,
        "curves": [{"name": c.name, "kind": c.kind, "layers": [s.layer for s in c.scores],
                    "accuracy": [s.accuracy for s in c.scores],
                    "control": [s.control_accuracy for s in c.scores],
                    "selectivity": [s.selectivity for s in c.scores]} for c in merged.curves],
    }
    _fileio.write_json(cache, {"key": key, "section": section})
    return {**section, "cached": False, "cached_models": cached_models,
            "seconds": time.perf_counter() - start}


def probe_layers(run: DemoRun) -> str:
    """The demo step: probe the small BERT pretrained here and all-MiniLM-L6-v2 (in that
    order, within the step's share of the budget) on Brown POS; ``summary["layers"]``."""
    models = {"small BERT (pretrained here)": run.out / "pretrain",
              "all-MiniLM-L6-v2": fetch(ENCODER, quiet=True)}
    section = layer_probes(models, run.out / LAYERS_DIR,
                           budget_seconds=max(MIN_STEP_SECONDS, run.clock.allot("layers")),
                           device="cpu", cache_dir=run.cache / "demo" / "layer-probes")
    run.summary["layers"] = section
    best = {c["name"]: max(zip(c["accuracy"], c["layers"], strict=True))
            for c in section["curves"] if c["kind"] == "trained"}
    shown = "; ".join(f"{name}: best layer {layer} ({accuracy:.3f})"
                      for name, (accuracy, layer) in best.items())
    return (f"POS probes on {section['test_items']:,} held-out Brown words: {shown} "
            f"(per-word baseline {section['baselines']['per-word']:.3f})")
