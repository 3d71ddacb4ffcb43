"""Which process this is in a ``torchrun`` / ``accelerate launch`` run, and what runs first.

The one place that decides which process is the main one (:func:`is_main_process`): everything
else that writes shared files (the run folder, checkpoints, logs, the exported model, the upload)
asks it.
"""

from __future__ import annotations

import contextlib
import os

import torch

from diffutron_train.errors import TrainError

_SHARDED = ("FSDP", "DEEPSPEED", "MEGATRON_LM")
"""accelerate's distributed types that split tensors over ranks: not supported yet."""


def cpu_only() -> bool:
    """No accelerator to use: accelerate then runs a ``torchrun`` launch as multi-CPU (gloo)."""
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def distributed_state():
    """accelerate's process state (rank, world size), started for CPU-only machines too."""
    from accelerate import PartialState

    return PartialState(cpu=cpu_only())


_RANK = ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_SIZE = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMI_SIZE")
"""Where ``torchrun`` and the MPI launchers accelerate supports put the rank and world size (the
variables accelerate itself reads, in its order)."""


def _launch_value(names: tuple[str, ...], default: int) -> int:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return default


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (``torchrun``, ``accelerate launch``, MPI), or a lone
    process."""
    return _launch_value(_RANK, 0) == 0


@contextlib.contextmanager
def main_process_first():
    """A context where rank 0 runs first and the other ranks after it (for work on shared files:
    claiming the run folder, building the corpus); a plain context in a lone process."""
    if _launch_value(_WORLD_SIZE, 1) == 1:
        yield
        return
    state, first = distributed_state(), is_main_process()
    if not first:
        state.wait_for_everyone()
    yield
    if first:
        state.wait_for_everyone()


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


def data_parallel_accelerator(mixed_precision: str):
    """An :class:`accelerate.Accelerator` for this launch (``mixed_precision`` as
    :func:`resolve_mixed_precision` reads it). Sharded launches (FSDP, DeepSpeed, Megatron-LM)
    are refused: a checkpoint needs whole tensors on rank 0."""
    from accelerate import Accelerator

    distributed_state()
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(mixed_precision), cpu=cpu_only()
    )
    kind = getattr(accelerator.distributed_type, "value", str(accelerator.distributed_type))
    if kind in _SHARDED:
        raise TrainError(
            f"{kind} is not supported yet (checkpoints need whole tensors on rank 0); "
            "launch data-parallel instead (diffutron-train configs: accelerate/2gpu)"
        )
    return accelerator
