"""Streamed, resumable, rank-sharded ``bertkit embed --shard-size`` and the Ray Data engine:
vectors equal to single-process ``sentence_embeddings``; bad input named."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

from bertkit.cli import main
from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.embed_stream import embed_stream, read_shards, shard_path
from bertkit.inference.embeddings import sentence_embeddings
from bertkit.inference.engine import Engine

from .conftest import WORDS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """20 texts of 1..12 words, with blank lines between some."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("stream") / "corpus.txt"
    lines = []
    for i in range(20):
        lines.append(" ".join(rng.choice(WORDS[:21]) for _ in range(rng.randint(1, 12))))
        if i % 7 == 0:
            lines.append("   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts = [line for line in lines if line.strip()]
    numbers = [n for n, line in enumerate(lines, 1) if line.strip()]
    return path, texts, numbers


@pytest.fixture(scope="module")
def engine(encoder_dir):
    return Engine.from_pretrained(encoder_dir, device="cpu", batch_size=4)


def test_shards_equal_one_pass_and_resume(corpus, engine, tmp_path):
    path, texts, numbers = corpus
    expected = sentence_embeddings(engine, None, texts).numpy()
    out = tmp_path / "out"
    report = embed_stream(engine, path, out, shard_size=6)
    assert (report.written, report.skipped, report.texts) == (4, 0, 20)
    shards = read_shards(out)
    np.testing.assert_allclose(np.concatenate(shards["embeddings"]), expected, atol=1e-5)
    assert np.concatenate(shards["lines"]).tolist() == numbers
    before = shard_path(out, 2).read_bytes()
    shard_path(out, 2).unlink()  # a crash before shard 2 was written
    again = embed_stream(engine, path, out, shard_size=6)
    assert (again.written, again.skipped, again.texts) == (1, 3, 6)
    np.testing.assert_allclose(np.concatenate(read_shards(out)["embeddings"]), expected,
                               atol=1e-5)
    assert len(shard_path(out, 2).read_bytes()) == len(before)


def test_ranks_split_the_shards(corpus, engine, tmp_path, monkeypatch):
    path, texts, _ = corpus
    out = tmp_path / "ranks"
    monkeypatch.setenv("WORLD_SIZE", "2")
    done = []
    for rank in ("0", "1"):  # as torchrun sets them
        monkeypatch.setenv("RANK", rank)
        report = embed_stream(engine, path, out, shard_size=6)
        done.append(sorted(p.name for p in out.iterdir()))
        assert report.rank == int(rank) and report.world_size == 2 and report.written == 2
    assert done[0] == ["shard-000000.safetensors", "shard-000002.safetensors"]
    assert len(done[1]) == 4
    expected = sentence_embeddings(engine, None, texts).numpy()
    np.testing.assert_allclose(np.concatenate(read_shards(out)["embeddings"]), expected,
                               atol=1e-5)


def test_the_cli_streams_and_rejects_bad_input(corpus, encoder_dir, tmp_path, capsys):
    path, _, _ = corpus
    base = ["embed", "--model", str(encoder_dir), "--device", "cpu", "--input", str(path)]
    assert main([*base, "--output", str(tmp_path / "cli"), "--shard-size", "16"]) == 0
    assert "20 texts in 2 new shards (0 already done; rank 0 of 1)" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\nalso fine\n\xff\xfe broken\n")
    for args, message in [
        ([*base, "--output", str(tmp_path / "b"), "--shard-size", "4", "--pooling", "none"],
         "choose --pooling mean|cls|max"),
        (["embed", "--model", str(encoder_dir), "--input", "-", "--output",
          str(tmp_path / "c"), "--shard-size", "4"], "expected --input FILE"),
        (["embed", "--model", str(encoder_dir), "--device", "cpu", "--input", str(bad),
          "--output", str(tmp_path / "d"), "--shard-size", "4"], "bad.txt:4: not UTF-8"),
    ]:
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    with pytest.raises(SystemExit) as refused:  # argparse, from the flag's declared range
        main([*base, "--output", str(tmp_path / "a"), "--shard-size", "0"])
    assert refused.value.code == 2
    assert "--shard-size: expected an integer from 1" in capsys.readouterr().err
    with pytest.raises(UsageError, match="rank 2 of world size 2"):
        embed_stream(None, path, tmp_path / "e", rank=2, world_size=2)  # type: ignore[arg-type]
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no texts to embed"):
        embed_stream(None, tmp_path / "blank.txt", tmp_path / "f")  # type: ignore[arg-type]


def test_ray_missing_is_one_line(corpus, encoder_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    path, _, _ = corpus
    assert main(["embed", "--model", str(encoder_dir), "--input", str(path), "--output",
                 str(tmp_path / "r"), "--engine", "ray"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --engine ray needs Ray Data: pip install 'bertkit[ray]'"]


@pytest.mark.skipif(os.environ.get("BERTKIT_RAY_TESTS") != "1",
                    reason="starts a local Ray cluster (minutes on a loaded 2-core machine); "
                           "set BERTKIT_RAY_TESTS=1 with bertkit[ray] installed")
def test_ray_data_vectors_equal_single_process(corpus, encoder_dir, engine, tmp_path):
    """A local Ray instance, two model actors. Ray is not in the CI's test extra (it starts a
    cluster of processes: too slow for the unit suite)."""
    ray = pytest.importorskip("ray", reason="ray not installed (pip install 'bertkit[ray]')")
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'bertkit[ray]')")
    import pyarrow.parquet as pq

    from bertkit.inference.ray_embed import embed_file_ray

    path, texts, _ = corpus
    try:
        # logical CPUs: two actors hold one each, the read and filter tasks need more
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        rows = embed_file_ray(path, tmp_path / "parquet", encoder_dir, batch_size=4, workers=2)
    finally:
        ray.shutdown()
    assert rows == len(texts)
    table = pq.read_table(tmp_path / "parquet").to_pydict()
    got = dict(zip(table["text"], table["embedding"], strict=True))
    expected = sentence_embeddings(engine, None, texts).numpy()
    assert sorted(got) == sorted(set(texts))
    for text, vector in zip(texts, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got[text], dtype=np.float32), vector, atol=1e-5)
