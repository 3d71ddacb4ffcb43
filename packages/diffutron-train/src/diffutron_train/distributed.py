"""Which process this is in a ``torchrun`` / ``accelerate launch`` run, and what runs first."""

from __future__ import annotations

import contextlib
import os

import torch


def cpu_only() -> bool:
    """No accelerator to use: accelerate then runs a ``torchrun`` launch as multi-CPU (gloo)."""
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def distributed_state():
    """accelerate's process state (rank, world size), started for CPU-only machines too."""
    from accelerate import PartialState

    return PartialState(cpu=cpu_only())


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (``torchrun``/``accelerate launch``), or a lone process."""
    return int(os.environ.get("RANK", "0")) == 0


def main_process_first():
    """A context where rank 0 runs first and the other ranks after it (for work on shared files:
    claiming the run folder, building the corpus); a plain context in a lone process."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return contextlib.nullcontext()
    return distributed_state().main_process_first()


def resolve_mixed_precision(value: str) -> str:
    """``auto``: what ``accelerate launch`` was told, else bf16 (or fp16) on a GPU, else none."""
    if value != "auto":
        return value
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launched:
        return launched
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"
