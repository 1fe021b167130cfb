"""Train ToyNet for 6 steps, stopping at step 3 and resuming: run by torchrun (2 processes) or
called in-process (1 process) by test_train_distributed.py, which compares the two runs.

Usage: torchrun --standalone --nproc_per_node 2 ddp_train_script.py OUTPUT_DIR GLOBAL_BATCH
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from train_toys import make_trainer

from bertkit.training import distributed

STOP_AT, MAX_STEPS = 3, 6


def run(output_dir: Path, global_batch: int) -> None:
    torch.set_num_threads(1)
    with distributed("cpu") as ctx:
        settings = {
            "n": 64, "dropout": 0.0, "noise": False, "max_steps": MAX_STEPS, "log_every": 1,
            "eval_every": 3, "eval_n": 24, "grad_accum_steps": 2, "warmup_steps": 2,
            "batch_size": global_batch // (2 * ctx.world_size),  # 2 micro-batches per step
            "rank": ctx.rank, "world_size": ctx.world_size,
        }
        # Ranks start from different weights: DDP must broadcast rank 0's.
        first, _ = make_trainer(output_dir, model_seed=ctx.rank, **settings)
        first.add_callback(
            "on_step_end", lambda t, info: t.request_stop() if info["step"] == STOP_AT else None
        )
        assert first.fit().stop_reason == "requested"
        resumed, _ = make_trainer(output_dir, model_seed=100 + ctx.rank, **settings)
        result = resumed.fit(resume=True)
        assert (result.stop_reason, result.step) == ("max_steps", MAX_STEPS), result


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]))
