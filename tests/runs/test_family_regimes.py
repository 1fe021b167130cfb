"""The ALBERT (MLM + sentence order) and ELECTRA (generator + replaced-token discriminator)
regimes on real text: their checkpoints load in ``transformers`` with the same outputs, the
command line spells the objective ``--objective`` (``--regime`` too), and a model of the wrong
family or a non-positive λ is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bertkit.cli import main
from bertkit.runs.pretrain import PretrainResult, PretrainSettings, pretrain
from bertkit.tokenization import Tokenizer

ALBERT_TINY = {"num_hidden_layers": 2, "hidden_size": 32, "embedding_size": 16,
               "num_attention_heads": 2, "intermediate_size": 64}
ELECTRA_TINY = {"num_hidden_layers": 2, "hidden_size": 32, "embedding_size": 16,
                "num_attention_heads": 2, "intermediate_size": 64, "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0}
TEXT = ["the company said profits rose in the first quarter",
        "shares fell after the bank cut its forecast"]


def _same_outputs(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape
    return float((ours - theirs).abs().max())


def _reference(cls_name: str, directory: Path) -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    model, info = getattr(transformers, cls_name).from_pretrained(directory,
                                                                  output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return model.eval()


@pytest.fixture(scope="module")
def albert_run(small_corpus: Path, tokenizer_dir: Path,
               tmp_path_factory: pytest.TempPathFactory) -> PretrainResult:
    settings = PretrainSettings(
        corpus=[small_corpus], output_dir=tmp_path_factory.mktemp("albert"),
        tokenizer=tokenizer_dir, preset="albert_base", model_overrides=ALBERT_TINY,
        regime="albert", seq_len=32, batch_size=8, dupe_factor=1, max_steps=6, eval_every=3,
        eval_fraction=0.1, learning_rate=1e-3, log_every=1, progress=False, device="cpu",
        threads=1)
    return pretrain(settings)


def test_albert_sop_run_loads_as_hugging_face_albert(albert_run: PretrainResult) -> None:
    from bertkit import _fileio
    from bertkit.model.pretrained import AlbertForPreTraining

    final = albert_run.eval
    assert final is not None and "sop_accuracy" in final and "nsp_accuracy" not in final
    manifests = list((albert_run.output_dir / "data").glob("*/train/manifest.json"))
    assert len(manifests) == 1
    assert _fileio.read_json(manifests[0])["objective"] == "sop"

    directory = albert_run.model_dir
    assert directory == albert_run.output_dir
    ours = AlbertForPreTraining.from_pretrained(directory)
    theirs = _reference("AlbertForPreTraining", directory)
    inputs = Tokenizer.from_pretrained(directory)(TEXT, padding=True, return_tensors="pt")
    with torch.no_grad():
        mine = ours(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"])
        ref = theirs(**{k: inputs[k] for k in ("input_ids", "attention_mask",
                                               "token_type_ids")})
    real = inputs["attention_mask"].bool()
    assert _same_outputs(mine.prediction_logits[real], ref.prediction_logits[real]) <= 1e-5
    assert _same_outputs(mine.sop_logits, ref.sop_logits) <= 1e-5


@pytest.fixture(scope="module")
def electra_run(reuters_corpus: Path, tokenizer_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> PretrainResult:
    settings = PretrainSettings(
        corpus=[reuters_corpus], output_dir=tmp_path_factory.mktemp("electra"),
        tokenizer=tokenizer_dir, preset="electra_small_discriminator",
        model_overrides=ELECTRA_TINY, regime="electra", seq_len=64, batch_size=32,
        max_steps=200, learning_rate=3e-3, warmup_steps=20, eval_every=100,
        eval_fraction=0.1, log_every=10, progress=False, device="cpu", threads=1)
    return pretrain(settings)


def test_tiny_electra_discriminator_beats_the_constant_baseline(
        electra_run: PretrainResult) -> None:
    """Held out, the discriminator's log-loss beats the best constant answer (the replaced
    share everywhere, whose loss is that share's binary entropy): it tells replaced tokens from
    original ones. Its *accuracy* does not yet beat answering "original" everywhere at this
    budget: the generator samples from its own distribution, so a replacement is only
    detectable where the discriminator knows the context better than the generator does
    (measured: equal to the baseline within ±0.002 up to 1,500 steps)."""
    import json
    import math

    final = electra_run.eval
    assert final is not None and final["step"] == electra_run.step
    share = final["replaced_fraction"]
    constant = -(share * math.log(share) + (1 - share) * math.log(1 - share))
    print(f"held-out discriminator loss {final['rtd_loss']:.4f} vs constant {constant:.4f}; "
          f"accuracy {final['rtd_accuracy']:.4f} vs all-original {final['rtd_baseline']:.4f} "
          f"(replaced {share:.4f}); AUC {[h.get('rtd_auc') for h in electra_run.history]}; "
          f"generator MLM accuracy {final['mlm_accuracy']:.4f} vs "
          f"unigram {final['unigram_baseline']:.4f}")
    assert final["rtd_baseline"] == pytest.approx(1 - share)
    assert 0.05 < share < 0.15  # 15 % masked, most samples differ from the original
    # Measured 0.005 below the constant at 200–300 steps (0.012 at step 50, while the
    # generator still samples rare tokens); a discriminator that learns nothing is above it.
    assert final["rtd_loss"] < constant - 0.002
    assert final["rtd_accuracy"] > final["rtd_baseline"] - 0.005
    records = [json.loads(line) for line in (electra_run.output_dir / "metrics.jsonl").open()]
    losses = [r["loss"] for r in records if r.get("kind") == "train"]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 1.0, f"training loss did not fall: {first:.3f} → {last:.3f}"
    evals = [r for r in records if r.get("kind") == "pretrain_eval"]
    assert all({"mlm_accuracy", "rtd_accuracy", "replaced_fraction"} <= set(r) for r in evals)


def test_electra_checkpoints_load_in_transformers(electra_run: PretrainResult) -> None:
    from bertkit.model.pretrained import (
        ElectraForMaskedLM,
        ElectraForPreTraining,
        ElectraForSequenceClassification,
    )

    out = electra_run.output_dir
    assert electra_run.model_dir == out / "discriminator"
    assert not (out / "model.safetensors").exists()
    tokenizer = Tokenizer.from_pretrained(out / "discriminator")
    inputs = tokenizer(TEXT, padding=True, return_tensors="pt")
    args = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    real = inputs["attention_mask"].bool()
    for folder, ours_cls, theirs_name in (("discriminator", ElectraForPreTraining,
                                           "ElectraForPreTraining"),
                                          ("generator", ElectraForMaskedLM,
                                           "ElectraForMaskedLM")):
        directory = out / folder
        assert (directory / "tokenizer.json").is_file()
        ours, theirs = ours_cls.from_pretrained(directory), _reference(theirs_name, directory)
        with torch.no_grad():
            mine, ref = ours(**args).logits, theirs(**args).logits
        assert _same_outputs(mine[real], ref[real]) <= 1e-5, folder
    generator = ElectraForMaskedLM.from_pretrained(out / "generator").config
    assert generator.hidden_size == ELECTRA_TINY["hidden_size"] // 4
    assert generator.embedding_size == ELECTRA_TINY["embedding_size"]
    # The discriminator is an encoder like any other: a classifier loads on top of it.
    classifier = ElectraForSequenceClassification.from_pretrained(out / "discriminator",
                                                                  num_labels=3)
    assert classifier(**args).logits.shape == (len(TEXT), 3)


def _cli(corpus: Path, tokenizer: Path, out: Path, *extra: str) -> list[str]:
    overrides = [a for key in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                               "intermediate_size")
                 for a in ("--model-override", f"{key}={ELECTRA_TINY[key]}")]
    return ["pretrain", "--corpus", str(corpus), "--tokenizer", str(tokenizer), "--out",
            str(out), "--seq-len", "32", "--batch-size", "8", "--eval-fraction", "0.1",
            "--threads", "1", "--device", "cpu", "--no-progress", *overrides, *extra]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_cli_objective_electra_runs(small_corpus: Path, tokenizer_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main([*_cli(small_corpus, tokenizer_dir, out, "--objective", "electra",
                       "--preset", "electra_small_discriminator", "--rtd-weight", "20"),
                 "--max-steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{out / 'discriminator'}\tstep=2")
    assert "rtd_accuracy=" in printed and "replaced_fraction=" in printed
    assert (out / "generator" / "model.safetensors").is_file()


@pytest.mark.parametrize(("flags", "named"), [
    (["--objective", "electra", "--preset", "bert_tiny"], ["electra", "'bert'"]),
    (["--regime", "albert", "--preset", "electra_small_discriminator"], ["albert",
                                                                        "'electra'"]),
    (["--objective", "bert", "--preset", "albert_base"], ["bert", "'albert'"]),
    (["--objective", "electra", "--preset", "electra_small_discriminator", "--rtd-weight",
      "0"], ["rtd_weight", "positive"]),
    (["--objective", "electra", "--preset", "electra_small_discriminator",
      "--generator-size", "1.5"], ["generator_size"]),
])
def test_bad_combinations_are_one_error(flags: list[str], named: list[str], small_corpus: Path,
                                        tokenizer_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_cli(small_corpus, tokenizer_dir, tmp_path / "o", *flags),
                 "--max-steps", "1"]) == 2
    line = _error_line(capsys)
    assert all(word in line for word in named), line
    assert not (tmp_path / "o" / "checkpoints").exists()
