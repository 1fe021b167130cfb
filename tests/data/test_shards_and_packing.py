"""Static shards (write once, memory-map, read back exactly) and RoBERTa packing."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
import torch

from bertkit.data.batch import collate
from bertkit.data.instances import (
    ShardDataset,
    build_nsp_shards,
    create_nsp_instances,
    pack_sequences,
    write_shards,
)
from bertkit.data.masking import IGNORE_INDEX, MaskingConfig, prediction_budget
from bertkit.errors import DataFormatError, UsageError

PAD, CLS, SEP, MASK = 0, 2, 3, 4
SPECIAL = (0, 1, 2, 3, 4)


def small_documents(n_docs: int, seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    return [[[rng.randrange(5, 1000) for _ in range(rng.randint(3, 20))]
             for _ in range(rng.randint(3, 15))] for _ in range(n_docs)]


@pytest.fixture
def masking() -> MaskingConfig:
    return MaskingConfig(vocab_size=1000, mask_token_id=MASK, special_ids=SPECIAL,
                         max_predictions=20)


def test_shard_round_trip_is_exact(tmp_path, masking):
    instances = create_nsp_instances(small_documents(120, 0), max_seq_length=64,
                                     rng=random.Random(0), cls_id=CLS, sep_id=SEP)
    manifest = write_shards(tmp_path, instances, masking=masking,
                            generator=torch.Generator().manual_seed(0), max_seq_length=64,
                            instances_per_shard=70, mask_batch_size=32)
    assert manifest["num_instances"] == len(instances) > 140
    assert len(manifest["shards"]) == -(-len(instances) // 70)
    assert json.loads((tmp_path / "manifest.json").read_text()) == json.loads(
        json.dumps(manifest))

    dataset = ShardDataset(tmp_path)
    assert len(dataset) == len(instances)
    for i, inst in enumerate(instances):
        ex = dataset[i]
        predicted = ex.mlm_labels != IGNORE_INDEX
        restored = torch.where(predicted, ex.mlm_labels, ex.input_ids)
        assert restored.tolist() == inst.tokens, f"instance {i}"
        assert ex.token_type_ids.tolist() == inst.segment_ids
        assert ex.next_sentence_label == int(inst.is_random_next)
        a_len = inst.segment_ids.count(0)
        assert not predicted[[0, a_len - 1, len(inst.tokens) - 1]].any()
        budget = prediction_budget(torch.tensor([len(inst.tokens) - 3]), 0.15, 20).item()
        assert predicted.sum().item() == budget
        changed = predicted & (ex.input_ids != ex.mlm_labels)
        assert set(ex.input_ids[changed].tolist()).isdisjoint(SPECIAL[:4])
    assert dataset[-1].input_ids.tolist() == dataset[len(dataset) - 1].input_ids.tolist()
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_build_nsp_shards_dupes_get_their_own_masks(tmp_path, masking):
    documents = small_documents(150, 1)
    manifest = build_nsp_shards(documents, tmp_path, cls_id=CLS, sep_id=SEP, masking=masking,
                                dupe_factor=3, max_seq_length=64, seed=7)
    dataset = ShardDataset(tmp_path)
    assert manifest["dupe_factor"] == 3 and len(dataset) == manifest["num_instances"]
    assert all(len(dataset[i].input_ids) <= 64 for i in range(len(dataset)))
    labels = [dataset[i].next_sentence_label for i in range(len(dataset))]
    assert np.mean(labels) == pytest.approx(0.5, abs=0.05)
    # Each pass pairs and masks anew: the passes are not copies of one another.
    third = len(dataset) // 3
    first = [dataset[i].input_ids.tolist() for i in range(third)]
    rest = {tuple(dataset[i].input_ids.tolist()) for i in range(third, len(dataset))}
    assert sum(tuple(x) in rest for x in first) < third // 10
    again = build_nsp_shards(documents, tmp_path / "again", cls_id=CLS, sep_id=SEP,
                             masking=masking, dupe_factor=3, max_seq_length=64, seed=7)
    assert again["num_instances"] == manifest["num_instances"]
    for kind in ("tokens", "index", "mlm"):
        assert np.array_equal(np.load(tmp_path / f"shard-00000.{kind}.npy"),
                              np.load(tmp_path / "again" / f"shard-00000.{kind}.npy"))


def test_shards_feed_a_dataloader(tmp_path, masking):
    build_nsp_shards(small_documents(40, 2), tmp_path, cls_id=CLS, sep_id=SEP, masking=masking,
                     dupe_factor=1, max_seq_length=64)
    dataset = ShardDataset(tmp_path)
    clone = pickle.loads(pickle.dumps(dataset))  # what a spawned DataLoader worker receives
    assert clone._arrays is None and torch.equal(clone[3].input_ids, dataset[3].input_ids)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=16, collate_fn=lambda xs: collate(xs, pad_id=PAD, pad_to_multiple_of=8))
    batch = next(iter(loader))
    assert batch.input_ids.shape[0] == 16 and batch.input_ids.shape[1] % 8 == 0
    assert batch.next_sentence_labels.shape == (16,)
    assert ((batch.mlm_labels != IGNORE_INDEX) <= (batch.attention_mask == 1)).all()


def test_missing_manifest_and_damaged_shards_are_reported(tmp_path, masking):
    with pytest.raises(DataFormatError, match=r"no manifest\.json"):
        ShardDataset(tmp_path)
    build_nsp_shards(small_documents(30, 3), tmp_path, cls_id=CLS, sep_id=SEP, masking=masking,
                     dupe_factor=1, max_seq_length=64)
    np.save(tmp_path / "shard-00000.index.npy", np.zeros((3, 6), dtype=np.int64))
    with pytest.raises(DataFormatError, match="does not match the manifest"):
        ShardDataset(tmp_path)[0]
    (tmp_path / "shard-00000.mlm.npy").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="shard-00000"):
        ShardDataset(tmp_path)[0]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(DataFormatError, match="version"):
        ShardDataset(tmp_path)


def test_write_shards_rejects_overlong_or_no_instances(tmp_path, masking):
    instances = create_nsp_instances(small_documents(10, 4), max_seq_length=64,
                                     rng=random.Random(0), cls_id=CLS, sep_id=SEP)
    with pytest.raises(UsageError, match="max_seq_length is 32"):
        write_shards(tmp_path, instances, masking=masking, generator=torch.Generator(),
                     max_seq_length=32)
    with pytest.raises(UsageError, match="no instances"):
        write_shards(tmp_path, [], masking=masking, generator=torch.Generator(),
                     max_seq_length=64)
    assert not (tmp_path / "manifest.json").exists()


# --------------------------------------------------------------------------- packing


def test_packed_sequences_are_full_except_the_last():
    rng = random.Random(0)
    documents = [[rng.randrange(5, 100) for _ in range(rng.randint(1, 300))] for _ in range(60)]
    packed = list(pack_sequences(iter(documents), 128, doc_separator_id=SEP))
    assert all(len(p) == 128 for p in packed[:-1]) and 0 < len(packed[-1]) <= 128
    joined = [t for doc in documents for t in (*doc, SEP)][:-1]
    assert [t for p in packed for t in p] == joined  # nothing lost, separators between docs


def test_packed_sequences_with_a_frame():
    documents = [list(range(10, 20)), [], list(range(30, 33))]
    packed = list(pack_sequences(documents, 6, doc_separator_id=SEP, cls_id=CLS, sep_id=1))
    assert packed == [[CLS, 10, 11, 12, 13, 1], [CLS, 14, 15, 16, 17, 1],
                      [CLS, 18, 19, SEP, 30, 1], [CLS, 31, 32, 1]]
