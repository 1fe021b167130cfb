"""The dynamic batcher on its own, deterministically: which items share a batch (same kind,
closest length, within the size and token limits), isolation of a bad item, the bounded queue."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bertkit.errors import InputError, UsageError
from bertkit.server.batching import DynamicBatcher, ItemError, Overloaded
from bertkit.server.limits import BatchLimits


def run_all(limits: BatchLimits, requests: list[tuple[Hashable, list[str], list[int]]]
            ) -> tuple[list[Any], list[list[str]]]:
    """Submit every request at once; return each one's outcome and the batches that ran."""
    batches: list[list[str]] = []

    def run(key: Hashable, payloads: list[str]) -> list[str]:
        batches.append(list(payloads))
        if "bad" in payloads:
            raise InputError("bad payload")
        return [f"{key}:{p}" for p in payloads]

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as executor:
            batcher = DynamicBatcher(run, executor, limits)
            batcher.start()
            tasks = [asyncio.create_task(batcher.submit(*request)) for request in requests]
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            await batcher.stop()
            return outcomes

    return asyncio.run(main()), batches


def test_batches_group_the_closest_lengths_up_to_the_size_limit():
    requests = [("k", [name], [cost]) for name, cost in
                [("a", 5), ("b", 50), ("c", 6), ("d", 48), ("e", 7)]]
    outcomes, batches = run_all(BatchLimits(max_batch_size=3, max_wait_ms=1000), requests)
    assert outcomes == [["k:a"], ["k:b"], ["k:c"], ["k:d"], ["k:e"]]
    assert batches == [["a", "c", "e"], ["b", "d"]]


def test_token_budget_counts_padded_tokens_and_kinds_never_mix():
    requests = [("x", ["1", "2", "3", "4"], [30, 30, 30, 30]), ("y", ["5"], [30])]
    outcomes, batches = run_all(BatchLimits(max_batch_size=8, max_batch_tokens=100,
                                            max_wait_ms=0), requests)
    assert outcomes == [["x:1", "x:2", "x:3", "x:4"], ["y:5"]]
    assert sorted(map(sorted, batches)) == [["1", "2", "3"], ["4"], ["5"]]


def test_a_bad_item_fails_only_its_own_request():
    requests = [("k", ["ok1"], [3]), ("k", ["fine", "bad"], [3, 3]), ("k", ["ok2"], [3])]
    outcomes, batches = run_all(BatchLimits(max_wait_ms=1000, max_batch_size=4), requests)
    assert outcomes[0] == ["k:ok1"] and outcomes[2] == ["k:ok2"]
    assert isinstance(outcomes[1], ItemError) and outcomes[1].index == 1
    assert batches[0] == ["ok1", "fine", "bad", "ok2"]  # shared, then rerun one by one
    assert batches[1:] == [["ok1"], ["fine"], ["bad"], ["ok2"]]


def test_a_full_queue_refuses_with_a_retry_estimate():
    requests = [("k", ["a", "b"], [1, 1]), ("k", ["c"], [1])]
    outcomes, _ = run_all(BatchLimits(max_queue=2, max_wait_ms=200), requests)
    assert outcomes[0] == ["k:a", "k:b"]
    assert isinstance(outcomes[1], Overloaded) and outcomes[1].retry_after >= 1


@pytest.mark.parametrize("field", [{"max_batch_size": 0}, {"max_queue": 1.5},
                                   {"max_wait_ms": -1}, {"max_batch_tokens": True}])
def test_limits_are_validated(field):
    with pytest.raises(UsageError, match=next(iter(field))):
        BatchLimits(**field).validate()
