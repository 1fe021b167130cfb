"""The demo's steps: real data → WordPiece vocabulary → a small BERT pretrained with masked LM →
two classifiers fine-tuned on Reuters R8 (that small BERT, and the real all-MiniLM-L6-v2) →
fill-mask, sentence similarity and attention maps → one report.

Every step calls the library function a user would call (``build_corpus``, ``train_wordpiece``,
``pretrain``, ``finetune_classifier``, ``fill_mask``, ``attention_maps``, ...); the step modules
only choose sizes that fit the time budget (:mod:`bertkit.demo.budget`), keep the evaluation
honest, and record what happened in ``summary.json`` for the report.

Where things are: :mod:`.run` (settings and the state the steps share), :mod:`.output` (the
output folder), :mod:`.data_steps`, :mod:`.pretraining`, :mod:`.finetuning`, :mod:`.showcase`
(the steps), :mod:`.report` (the page), and this module: the list of steps and the driver. A
step is a function ``step(run: DemoRun) -> str`` (its one-line note) that reads what earlier
steps put in ``run.summary`` and adds its own; adding one is one line in :data:`STEPS`.

Evaluation protocol (what the accuracies mean): each model trains for one pass over a
class-stratified subset of the R8 *training* split and is scored once, at the end, on a fixed
slice of the R8 *test* split (evenly spaced documents, the same slice for both models). There
is no model selection on the test slice. The pretraining corpus is the Reuters R52 *training*
split, which contains the R8 training documents (unlabelled) but not the R8 test split.

Output directory layout::

    OUT/demo.json                 marks the folder as a demo output (so a rerun may replace it)
    OUT/summary.json              every number the report shows
    OUT/report.html, OUT/*.png    the report and its figures; OUT/attention.html the map viewer
    OUT/pretrain/                 the pretrained model (Hugging Face layout) and its metrics
    OUT/finetune-small/, OUT/finetune-minilm/   the fine-tuned classifiers and predictions
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from bertkit import _fileio
from bertkit.demo.budget import Clock, idle_cores
from bertkit.demo.data_steps import prepare_data, train_tokenizer
from bertkit.demo.finetuning import choose_test_slice, finetune_minilm, finetune_small
from bertkit.demo.heads_section import probe_heads
from bertkit.demo.layers import probe_layers
from bertkit.demo.output import SUMMARY, prepare_output
from bertkit.demo.pretraining import pretrain_small_bert
from bertkit.demo.run import DemoResult, DemoRun, DemoSettings
from bertkit.demo.showcase import showcase
from bertkit.errors import BertkitError, UsageError
from bertkit.resources.artifacts import cache_root
from bertkit.version import __version__

__all__ = ["STEPS", "DemoResult", "DemoSettings", "run_demo"]


def write_report(run: DemoRun) -> str:
    from bertkit.demo.report import write_report  # matplotlib is imported only here

    run.summary["total_seconds"] = round(run.clock.elapsed(), 1)
    return write_report(run.out, run.summary)


#: The steps in order: (what the progress line says, the step). One line a step.
STEPS: tuple[tuple[str, Callable[[DemoRun], str]], ...] = (
    ("fetch and prepare the real data", prepare_data),
    ("train a WordPiece vocabulary", train_tokenizer),
    ("pretrain a small BERT (MLM + NSP)", pretrain_small_bert),
    ("choose the R8 test slice", choose_test_slice),
    ("fine-tune the small BERT on Reuters R8", finetune_small),
    ("fine-tune all-MiniLM-L6-v2 on Reuters R8", finetune_minilm),
    ("fill-mask, similarity and attention", showcase),
    ("probe what the layers know (POS, Brown)", probe_layers),
    ("what the attention heads look at (Brown)", probe_heads),
    ("write the report", write_report),
)


def run_demo(settings: DemoSettings | None = None) -> DemoResult:
    """Run every step within ``settings.max_minutes`` and write the report; see the module doc.

    Raises:
        UsageError: a bad setting, or an output folder that is not empty and not an earlier
            demo's, or that cannot be written.
        ArtifactError: the real data or model cannot be fetched.
    """
    settings = (settings or DemoSettings()).validate()
    out = Path(settings.output_dir)
    prepare_output(out, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads or idle_cores())
    run = DemoRun(settings, out, Clock(settings.max_minutes), cache_root(),
                  total_steps=len(STEPS))
    run.summary.update({"bertkit": __version__, "steps": [], "finetune": {},
                        "settings": {"minutes": settings.max_minutes, "seed": settings.seed,
                                     "threads": torch.get_num_threads()}})
    try:
        for name, work in STEPS:
            run.step(name, lambda work=work: work(run))
    except BertkitError:
        raise
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise UsageError(f"the demo could not write {err.filename or out}: {reason}") from None
    finally:
        torch.set_num_threads(threads)
    run.summary["total_seconds"] = round(run.clock.elapsed(), 1)
    _fileio.write_json(out / SUMMARY, _fileio.json_ready(run.summary))
    return DemoResult(out, run.summary)
