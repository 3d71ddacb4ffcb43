"""Data-parallel training on two CPU processes (gloo), launched the way users launch it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffutron_train import LoopSettings
from diffutron_train.steps import _batch_indices

WORKER = Path(__file__).parent / "scripts" / "ddp_worker.py"


def test_ranks_take_disjoint_rows_of_each_step():
    settings = LoopSettings(batch_size=4, grad_accum=2, seed=3)
    rows = 64  # one epoch = 4 steps of 2 ranks x 2 micro-batches x 4 rows
    seen = []
    for step in range(4):
        for micro in range(2):
            for rank in range(2):
                index = _batch_indices(rows, step, micro, settings, rank=rank, world=2)
                seen += index.tolist()
    assert sorted(seen) == list(range(rows))


@pytest.mark.slow
def test_two_processes_train_in_step_and_resume(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "DIFFUTRON_NO_PROGRESS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["backend"] == "gloo" for r in ranks)
    assert ranks[0]["steps"] == 4
    # Each rank trains on different rows; only averaged gradients keep their weights equal.
    assert ranks[0]["straight"] == ranks[1]["straight"] != ranks[0]["start"]
    # A two-process run stopped after a checkpoint and resumed ends where the straight one did.
    assert ranks[0]["resumed"] == ranks[0]["straight"] == ranks[1]["resumed"]
    # Rank 0 alone wrote the checkpoints.
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == [
        "step-2",
        "step-4",
    ]
