"""The demo report's translation section: a warm-started BERT2BERT trained for a few minutes on
Debian's German → English package descriptions, its translations of held-out sentences, their
BLEU / chrF beside the copy-the-source baseline, and one cross-attention alignment map.

The lead's pipeline calls :func:`translation_section` with a share of the demo budget and puts
the returned :class:`TranslationSection` (``to_dict()``) in the report summary. It is a
separate module so that the encoder–decoder half shows in the main job without the pipeline
knowing how a seq2seq run is driven.

A few CPU minutes only teach a bert-tiny BERT2BERT to copy names and common words: the
section says how long it trained and always prints the copy baseline, so a reader sees the
honest gap (the README's translation table has the longer runs).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bertkit import _fileio
from bertkit.data.readers import read_pairs
from bertkit.inference.alignment import cross_attention_maps, mean_over_heads
from bertkit.inference.attention_maps import (
    plot_attention,
    viz_available,
    write_attention_html,
)
from bertkit.resources.artifacts import fetch
from bertkit.resources.ddtp import build_ddtp
from bertkit.runs.seq2seq import Seq2SeqSettings, evaluate_seq2seq, load_seq2seq, train_seq2seq

__all__ = ["TranslationSection", "translation_section"]

#: Share of the section's minutes spent training; the rest translates the test sentences.
TRAIN_SHARE = 0.6
DONE_FILE = "demo_translation.json"


@dataclass
class TranslationSection:
    """What the report's translation section shows (paths are inside ``out``)."""

    model_dir: Path
    cached: bool                 # the model came from an earlier call's directory
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
    alignment_png: Path | None = None   # None when matplotlib is missing
    alignment_html: Path | None = None  # None when no test sentence got a translation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings), for the demo's summary file."""
        return _fileio.json_ready(asdict(self))


def translation_section(out: str | Path, *, minutes: float = 2.5, train_pairs: int = 4000,
                        test_pairs: int = 100, num_examples: int = 4,
                        encoder: str | Path | None = None, threads: int | None = None,
                        reuse: bool = True) -> TranslationSection:
    """Train (or reuse) a small warm-started German → English model and gather the section.

    Contract for the caller:

    - ``out``: a directory (created) that holds ``ddtp/`` (the corpus), ``model/`` (the run),
      ``test/`` (scores.json, predictions.jsonl), ``alignment.png``, ``alignment.html`` and
      :data:`DONE_FILE`. Calling again with the same ``out`` and ``reuse=True`` skips
      training (``cached=True``) and only re-scores: the "cached model" path for a short
      demo budget.
    - ``minutes``: the section's wall-clock share; :data:`TRAIN_SHARE` of it trains (a time
      budget, so the step count depends on the machine), the rest translates ``test_pairs``
      held-out sentences greedily.
    - ``encoder``: a BERT checkpoint for both halves (default: the bert-tiny MLM artifact
      ``splade-tiny``, fetched from the registry like the other demo artifacts).
    - Raises :class:`bertkit.errors.ArtifactError` when apt's DDTP indexes or the checkpoint
      cannot be had (the caller should skip the section and print the reason), and other
      :class:`~bertkit.errors.BertkitError` subclasses as the seq2seq run does.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    build_ddtp(out / "ddtp", languages=["de"])
    pairs_dir = out / "ddtp" / "de-en"
    train_file = out / "train-subset.jsonl"
    lines = (pairs_dir / "train.jsonl").read_text(encoding="utf-8").splitlines()[:train_pairs]
    _fileio.write_text(train_file, "\n".join(lines) + "\n")
    model_dir = out / "model"
    done = out / DONE_FILE
    cached = reuse and done.is_file() and (model_dir / "config.json").is_file()
    if cached:
        record = json.loads(done.read_text(encoding="utf-8"))
        steps, seconds = int(record["steps"]), float(record["train_seconds"])
    else:
        started = time.monotonic()
        settings = Seq2SeqSettings(
            train=train_file, output_dir=model_dir,
            encoder=encoder or fetch("splade-tiny", quiet=True), max_steps=100_000,
            max_minutes=minutes * TRAIN_SHARE, batch_size=32, learning_rate=5e-4,
            warmup_steps=50, progress=False, num_threads=threads, max_source_length=64,
            max_target_length=32, device="cpu")
        steps = train_seq2seq(settings).step
        seconds = time.monotonic() - started
        _fileio.write_json(done, {"steps": steps, "train_seconds": seconds})
    scored = out / "test"
    scored.mkdir(exist_ok=True)
    scores = evaluate_seq2seq(model_dir, pairs_dir / "test.jsonl", limit=test_pairs, out=scored,
                              device="cpu", max_new_tokens=32, max_source_length=64)
    records = [json.loads(line) for line in
               (scored / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    section = TranslationSection(
        model_dir=model_dir, cached=cached, steps=steps, train_seconds=round(seconds, 1),
        train_pairs=len(read_pairs(train_file)), test_pairs=min(test_pairs, len(records)),
        bleu=scores["bleu"], chrf=scores["chrf"], bleu_signature=scores["bleu_signature"],
        copy_bleu=scores["copy_baseline"]["bleu"], copy_chrf=scores["copy_baseline"]["chrf"],
        examples=[{k: r[k] for k in ("source", "reference", "hypothesis")}
                  for r in records[:num_examples]])
    _alignment(section, records, out)
    return section


def _alignment(section: TranslationSection, records: list[dict[str, Any]], out: Path) -> None:
    """Draw the first translated test sentence's cross-attention (last layer, heads averaged)."""
    record = next((r for r in records if r["hypothesis"].strip()), None)
    if record is None:
        return
    model, tokenizer, _ = load_seq2seq(section.model_dir, device="cpu")
    maps = cross_attention_maps(model, tokenizer, record["source"], record["hypothesis"],
                                max_source_length=64, max_target_length=32)
    section.alignment_text = maps.text
    section.alignment_html = out / "alignment.html"
    write_attention_html(maps, section.alignment_html,
                         title="bertkit cross-attention (German → English)", layer=-1)
    if viz_available():
        section.alignment_png = out / "alignment.png"
        plot_attention(mean_over_heads(maps), -1, 0, section.alignment_png)
