"""ResumableLoader: seeded epochs, rank shards that add up to the 1-process batch, resumes."""

from __future__ import annotations

import pytest
import torch

from bertkit.errors import CheckpointError, UsageError
from bertkit.training import ResumableLoader

DATA = list(range(23))


def ids(batch):
    return batch.tolist()


def test_epochs_are_seeded_permutations():
    loader = ResumableLoader(DATA, 5, drop_last=False, seed=1)
    first = [i for batch in loader for i in ids(batch)]
    second = [i for batch in loader for i in ids(batch)]
    assert len(first) == 25 and set(first) == set(DATA)  # padded by wrapping round
    assert first != second  # a new order each epoch
    again = ResumableLoader(DATA, 5, drop_last=False, seed=1)
    assert [i for batch in again for i in ids(batch)] == first
    other_seed = ResumableLoader(DATA, 5, drop_last=False, seed=2)
    assert [i for batch in other_seed for i in ids(batch)] != first
    assert ids(next(iter(ResumableLoader(DATA, 5, shuffle=False)))) == [0, 1, 2, 3, 4]


def test_rank_shards_make_up_the_single_process_batch():
    single = [ids(b) for b in ResumableLoader(DATA, 6, seed=4)]
    ranks = [[ids(b) for b in ResumableLoader(DATA, 3, seed=4, rank=r, world_size=2)]
             for r in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 3  # drop_last: 23 // 6
    for j, batch in enumerate(single):
        assert sorted(ranks[0][j] + ranks[1][j]) == sorted(batch)
        assert not set(ranks[0][j]) & set(ranks[1][j])


def take(loader, count):
    """``count`` batches, walking into new epochs as the trainer does."""
    taken, iterator = [], iter(loader)
    while len(taken) < count:
        try:
            taken.append(ids(next(iterator)))
        except StopIteration:
            iterator = iter(loader)
    return taken


@pytest.mark.parametrize("stop_after", [2, 4, 9])  # mid-epoch, at an epoch's end, later epoch
def test_state_dict_resumes_at_the_next_batch(stop_after):
    stream = take(ResumableLoader(DATA, 5, seed=7), 16)  # 4 epochs of 4 batches
    loader = ResumableLoader(DATA, 5, seed=7)
    seen = take(loader, stop_after)
    fresh = ResumableLoader(DATA, 5, seed=0)
    fresh.load_state_dict(loader.state_dict())  # the saved seed wins
    assert seen + take(fresh, 16 - stop_after) == stream


def test_position_translates_across_world_sizes():
    two = ResumableLoader(DATA, 3, seed=5, rank=1, world_size=2)
    iterator = iter(two)
    next(iterator), next(iterator)  # 2 global batches of 6 = 12 examples consumed
    one = ResumableLoader(DATA, 4, seed=5)
    one.load_state_dict(two.state_dict())
    assert (one.epoch, one.batch) == (0, 3)


def test_position_from_other_data_is_refused():
    state = ResumableLoader(DATA, 4).state_dict()
    with pytest.raises(CheckpointError, match="23 examples, but this one has 30"):
        ResumableLoader(list(range(30)), 4).load_state_dict(state)


def test_collate_and_private_dataloader_generator_leave_global_rng_alone():
    state = torch.get_rng_state()
    loader = ResumableLoader(DATA, 4, collate_fn=lambda items: items)
    list(loader)
    assert torch.equal(torch.get_rng_state(), state)


def test_too_small_for_one_global_batch():
    with pytest.raises(UsageError, match="smaller than one global batch"):
        ResumableLoader(DATA, 8, world_size=4, rank=0)
    with pytest.raises(UsageError, match="batch_size"):
        ResumableLoader(DATA, 0)
