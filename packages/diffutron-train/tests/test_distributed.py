"""Data-parallel training on two CPU processes (gloo), launched the way users launch it."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffutron_train import LoopSettings
from diffutron_train.steps import _batch_indices

WORKER = Path(__file__).parent / "scripts" / "ddp_worker.py"
LAYOUT = Path(__file__).parent / "scripts" / "layout_worker.py"


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_through_the_rendezvous_train_as_one_process_with_the_global_batch(tmp_path):
    """Two "nodes" (two torchrun agents, one process each, meeting through the c10d rendezvous
    on localhost, gloo) with 2 micro-batches a step train as one process with 4: the same loss
    at every step and the same weights, within float rounding; each layout's stopped and
    resumed run ends bit for bit where its straight run did."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFUTRON_NO_PROGRESS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    alone = subprocess.run(
        [sys.executable, str(LAYOUT), str(tmp_path / "one"), "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    rendezvous = ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{_free_port()}"]
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    node += ["--nproc_per_node", "1", *rendezvous, "--rdzv_id", "diffutron-nodes"]
    node += [str(LAYOUT), str(tmp_path / "two"), "2"]
    nodes = [subprocess.Popen(node, env=env, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    errors = [n.communicate(timeout=300)[1] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], [e[-3000:] for e in errors]
    one, two = (json.loads((tmp_path / d / "losses.json").read_text()) for d in ("one", "two"))
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3, 4]
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), (one, two)
    weights = {d: load_file(tmp_path / d / "straight.safetensors") for d in ("one", "two")}
    assert weights["one"].keys() == weights["two"].keys()
    for name, tensor in weights["one"].items():
        torch.testing.assert_close(weights["two"][name], tensor, rtol=1e-4, atol=1e-6)
    for d in ("one", "two"):
        resumed = load_file(tmp_path / d / "resumed.safetensors")
        assert all(torch.equal(resumed[n], t) for n, t in weights[d].items()), d
    progress = tmp_path / "two" / "b" / "checkpoints" / "step-4" / "progress.json"
    assert json.loads(progress.read_text())["world_size"] == 2
