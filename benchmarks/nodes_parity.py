"""One process against two "nodes" with the same global batch: the loss at each step and the
largest weight difference (docs/training.md#several-machines).

    uv run python benchmarks/nodes_parity.py

Runs packages/diffutron-train/tests/scripts/layout_worker.py (a tiny LoRA model, 4 steps of a
global batch of 16 rows, seed 1) once alone with 4 micro-batches a step, and once as two torchrun
agents of one process each meeting through the c10d rendezvous on localhost (gloo) with 2, then
prints both loss curves and how far the trained weights lie apart.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

WORKER = Path(__file__).parents[1] / "packages/diffutron-train/tests/scripts/layout_worker.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFUTRON_NO_PROGRESS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.TemporaryDirectory() as tmp:
        one, two = Path(tmp) / "one", Path(tmp) / "two"
        subprocess.run([sys.executable, str(WORKER), str(one), "4"], env=env, check=True)
        node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        node += ["--nproc_per_node", "1", "--rdzv_backend", "c10d"]
        node += ["--rdzv_endpoint", f"127.0.0.1:{free_port()}", "--rdzv_id", "parity"]
        agents = [subprocess.Popen([*node, str(WORKER), str(two), "2"], env=env) for _ in "ab"]
        assert [agent.wait() for agent in agents] == [0, 0]
        losses = [json.loads((d / "losses.json").read_text()) for d in (one, two)]
        print("step | 1 process x 4 micro-batches | 2 nodes x 2 micro-batches | difference")
        for a, b in zip(*losses, strict=True):
            print(
                f"{a['step']:>4} | {a['loss']:.7f} | {b['loss']:.7f} | {b['loss'] - a['loss']:.1e}"
            )
        weights = [load_file(d / "straight.safetensors") for d in (one, two)]
        gap = max((weights[1][n] - t).abs().max().item() for n, t in weights[0].items())
        size = max(t.abs().max().item() for t in weights[0].values())
        print(
            f"largest weight difference {gap:.1e} (largest weight {size:.2f}); "
            f"torch {torch.__version__}"
        )


if __name__ == "__main__":
    main()
