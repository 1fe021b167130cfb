"""The demo report's translation section: a warm-started BERT2BERT trained for a share of the
demo budget on Debian's German → English package descriptions, its translations of held-out
sentences, their BLEU / chrF beside the copy-the-source baseline, and one cross-attention
alignment map — so that the main job shows the encoder–decoder half too.

:func:`translation_step` is the pipeline's step (one line in ``STEPS``);
:func:`translation_section` does the work and is usable alone; :func:`translation_html` is the
report's section. Without apt's DDTP indexes (not Debian, no network for ``apt-get update``)
the step records why and the report says the section was skipped — the rest of the demo runs.

A few CPU minutes only teach a bert-tiny BERT2BERT to copy names and common words: the
section says how long it trained and always shows the copy baseline, so a reader sees the
honest gap (the README's translation table has the longer runs).
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bertkit import _fileio
from bertkit.data.readers import read_pairs
from bertkit.demo.budget import MIN_STEP_SECONDS
from bertkit.demo.run import DemoRun
from bertkit.errors import ArtifactError
from bertkit.inference.alignment import write_alignment
from bertkit.resources.artifacts import cache_root, fetch
from bertkit.resources.ddtp import build_ddtp
from bertkit.runs.seq2seq import Seq2SeqSettings, evaluate_seq2seq, load_seq2seq, train_seq2seq

__all__ = ["SECTION_DIR", "TranslationSection", "translation_html", "translation_section",
           "translation_step"]

SECTION_DIR = "translation"  # the step's folder in the demo output
#: Share of the section's seconds spent training; the rest loads, translates and draws.
TRAIN_SHARE = 0.6
#: Below this many seconds the section shrinks its data (the test suite's tiny budgets).
SMALL_BUDGET_SECONDS = 60.0
SOURCE_LENGTH, TARGET_LENGTH = 64, 32


@dataclass
class TranslationSection:
    """What the report's translation section shows (paths are inside the section's folder)."""

    steps: int
    train_seconds: float
    train_pairs: int
    test_pairs: int
    bleu: float
    chrf: float
    bleu_signature: str
    copy_bleu: float
    copy_chrf: float
    examples: list[dict[str, str]] = field(default_factory=list)  # source/reference/hypothesis
    alignment_text: str = ""
    alignment_png: Path | None = None   # None without matplotlib
    alignment_html: Path | None = None  # None when no test sentence got a translation

    @property
    def beats_copy(self) -> bool:
        return self.bleu > self.copy_bleu

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings), for the demo's summary file."""
        return {**_fileio.json_ready(asdict(self)), "beats_copy": self.beats_copy}


def translation_section(out: str | Path, *, seconds: float = 150.0,
                        encoder: str | Path | None = None, threads: int | None = None,
                        num_examples: int = 4, ddtp_dir: str | Path | None = None
                        ) -> TranslationSection:
    """Train a warm-started German → English model within ``seconds`` and gather the section.

    - ``out``: a directory (created) for ``model/`` (the run), ``test/`` (scores.json,
      predictions.jsonl), ``train-subset.jsonl``, ``alignment.png`` and ``alignment.html``.
    - ``seconds``: the section's wall-clock share; :data:`TRAIN_SHARE` of it trains (a time
      budget, so the step count depends on the machine), the rest translates the held-out
      sentences greedily (200 of them, 16 under :data:`SMALL_BUDGET_SECONDS`).
    - ``encoder``: a BERT checkpoint for both halves (default: the bert-tiny MLM artifact
      ``splade-tiny``, fetched from the registry like the other demo artifacts).
    - ``ddtp_dir``: where the corpus is built (default: ``cache_root()/ddtp``, built once and
      reused while apt's indexes do not change).

    Raises:
        ArtifactError: apt's DDTP indexes or the checkpoint cannot be had (the demo step
            skips the section and records the reason).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    small = seconds < SMALL_BUDGET_SECONDS
    corpus = Path(ddtp_dir) if ddtp_dir is not None else cache_root() / "ddtp"
    build_ddtp(corpus, languages=["de"])
    pairs_dir = corpus / "de-en"
    lines = (pairs_dir / "train.jsonl").read_text(encoding="utf-8").splitlines()
    train_file = out / "train-subset.jsonl"
    _fileio.write_text(train_file, "\n".join(lines[:256 if small else 4000]) + "\n")
    model_dir = out / "model"
    started = time.monotonic()
    settings = Seq2SeqSettings(
        train=train_file, output_dir=model_dir,
        encoder=encoder or fetch("splade-tiny", quiet=True), max_steps=100_000,
        max_minutes=seconds * TRAIN_SHARE / 60, batch_size=32, learning_rate=1e-3,
        warmup_steps=20, progress=False, threads=threads, max_source_length=SOURCE_LENGTH,
        max_target_length=TARGET_LENGTH, device="cpu")
    steps = train_seq2seq(settings).step
    train_seconds = time.monotonic() - started
    scored = out / "test"
    scored.mkdir(exist_ok=True)
    scores = evaluate_seq2seq(model_dir, pairs_dir / "test.jsonl", limit=16 if small else 200,
                              out=scored, device="cpu", max_new_tokens=TARGET_LENGTH,
                              max_source_length=SOURCE_LENGTH)
    records = [json.loads(line) for line in
               (scored / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    section = TranslationSection(
        steps=steps, train_seconds=round(train_seconds, 1),
        train_pairs=len(read_pairs(train_file)), test_pairs=len(records),
        bleu=scores["bleu"], chrf=scores["chrf"], bleu_signature=scores["bleu_signature"],
        copy_bleu=scores["copy_baseline"]["bleu"], copy_chrf=scores["copy_baseline"]["chrf"],
        examples=[{k: r[k] for k in ("source", "reference", "hypothesis")}
                  for r in records[:num_examples]])
    record = next((r for r in records if r["hypothesis"].strip()), None)
    if record is not None:  # the first translated test sentence's cross-attention
        model, tokenizer, _ = load_seq2seq(model_dir, device="cpu")
        drawn = write_alignment(model, tokenizer, record["source"], record["hypothesis"],
                                out / "alignment.html", out / "alignment.png",
                                title="bertkit cross-attention (German → English)",
                                max_source_length=SOURCE_LENGTH,
                                max_target_length=TARGET_LENGTH)
        section.alignment_text = drawn.text
        section.alignment_html, section.alignment_png = drawn.html, drawn.png
    return section


def translation_step(run: DemoRun) -> str:
    """The demo step: ``summary["translation"]`` holds the section, or ``{"skipped": why}``
    when the DDTP corpus (apt) or the checkpoint is unavailable."""
    seconds = max(MIN_STEP_SECONDS, run.clock.allot("translation"))
    try:
        section = translation_section(run.out / SECTION_DIR, seconds=seconds,
                                      threads=run.settings.threads)
    except ArtifactError as err:
        run.summary["translation"] = {"skipped": str(err)}
        return f"translation section skipped: {err}"
    run.summary["translation"] = section.to_dict()
    verdict = "beats" if section.beats_copy else "does not beat"
    return (f"{section.steps} steps in {section.train_seconds:.0f} s; BLEU {section.bleu:.2f} "
            f"on {section.test_pairs} held-out pairs {verdict} copying the source "
            f"({section.copy_bleu:.2f})")


def translation_html(section: dict[str, Any] | None, image: str) -> str:
    """The report's section from ``summary["translation"]``; ``image`` is the ``<img>`` tag
    of ``translation/alignment.png`` (empty without matplotlib)."""
    if section is None:
        return "<p>Not run.</p>"
    if "skipped" in section:
        return f"<p>Skipped: {html.escape(section['skipped'])}</p>"
    verdict = ("beats" if section["beats_copy"] else
               "does <strong>not</strong> beat")
    rows = "".join(f"<tr><td>{html.escape(e['source'])}</td><td>{html.escape(e['reference'])}"
                   f"</td><td>{html.escape(e['hypothesis'])}</td></tr>"
                   for e in section["examples"])
    link = (f' Every layer and head: <a href="{SECTION_DIR}/alignment.html">alignment.html</a>.'
            if section["alignment_html"] else "")
    return (f"<p>bert-tiny BERT2BERT warm-started from the MLM checkpoint (cross-attention "
            f"random), trained {section['steps']} steps in {section['train_seconds']:.0f} s on "
            f"{section['train_pairs']:,} Debian package descriptions (DDTP), scored on "
            f"{section['test_pairs']} held-out ones: BLEU {section['bleu']:.2f}, chrF "
            f"{section['chrf']:.2f}; copying the German source scores BLEU "
            f"{section['copy_bleu']:.2f}, chrF {section['copy_chrf']:.2f}. The model "
            f"{verdict} the copy baseline at this budget (sacreBLEU "
            f"<code>{html.escape(section['bleu_signature'])}</code>).</p>"
            "<table><thead><tr><th>German source</th><th>English reference</th>"
            f"<th>model</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<p>Cross-attention of the last decoder layer, heads averaged: "
            f"{html.escape(section['alignment_text'])}.{link}</p>" + image)
