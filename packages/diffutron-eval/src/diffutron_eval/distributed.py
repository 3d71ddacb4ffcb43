"""Which process this is in a ``torchrun`` / ``accelerate launch`` evaluation, and the collectives
the processes use to combine their shares.

lm-eval's contract (``lm_eval.evaluator.evaluate``, 0.4.13): the model reports ``rank`` and
``world_size``; each task builds only its rank's documents (document ``i`` goes to rank
``i % world_size``); the evaluator calls the model's ``all_gather`` (request counts, to pad uneven
shares), ``barrier`` (after each request type) and ``gather_object`` (each document's metrics, to
rank 0), and only rank 0 gets results back. :class:`~diffutron_eval.DiffutronLM` provides those
methods with :mod:`torch.distributed` (no accelerate); :func:`~diffutron_eval.perplexity` shards
its batches and sums with :func:`sum_across`.

A launcher sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (``torchrun``, ``accelerate launch``);
with ``WORLD_SIZE`` above 1, :func:`start_processes` joins the process group (gloo for CPU
processes, NCCL for CUDA tensors beside gloo for CPU ones), once per process.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from diffutron_common import reason
from diffutron_eval.errors import EvalError

LAUNCH_HINT = "launch with torchrun --nproc_per_node N (or accelerate launch), or unset WORLD_SIZE"


@dataclass(frozen=True)
class Processes:
    """This process's place in a launch: ``rank`` of ``world_size``, and the ``device`` it uses
    (``None``: the loader's default, in a lone process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes outputs and prints."""
        return self.rank == 0


def _launch_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise EvalError(f"{name}={value!r} is not a whole number; {LAUNCH_HINT}") from None


def launch() -> Processes:
    """Rank, world size and local rank of this process, from the process group when one is
    running, else from the launcher's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (a lone process when
    they are unset)."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = _launch_int("RANK", 0), _launch_int("WORLD_SIZE", 1)
    if world < 1 or not 0 <= rank < world:
        raise EvalError(f"RANK={rank} does not fit WORLD_SIZE={world}; {LAUNCH_HINT}")
    cards = max(torch.cuda.device_count(), 1) if torch.cuda.is_available() else 1
    return Processes(rank, world, _launch_int("LOCAL_RANK", rank % cards))


def rank_device(device: str | None, processes: Processes) -> str | None:
    """The device of this rank: with several processes, ``None`` or ``cuda`` means
    ``cuda:LOCAL_RANK`` (``cpu`` when there is no CUDA); any other value is kept."""
    if processes.world_size == 1:
        return device
    if device in (None, "", "cuda") and torch.cuda.is_available():
        return f"cuda:{processes.local_rank}"
    return device or "cpu"


def start_processes(device: str | None = None) -> Processes:
    """This process's :class:`Processes`, with its device from ``device``
    (:func:`rank_device`); under a multi-process launch, the process group is started first if
    nothing has started it. A group that cannot start is one :class:`EvalError`."""
    processes = launch()
    chosen = rank_device(device, processes)
    if processes.world_size > 1 and not dist.is_initialized():
        _init_group(processes, chosen)
    return Processes(processes.rank, processes.world_size, processes.local_rank, chosen)


def _init_group(processes: Processes, device: str | None) -> None:
    """``torch.distributed.init_process_group`` from the launcher's environment (``env://``):
    gloo, plus NCCL for CUDA tensors when this rank runs on a GPU."""
    if not dist.is_available():
        raise EvalError(f"WORLD_SIZE={processes.world_size}, but this torch has no distributed")
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    try:
        if cuda:
            torch.cuda.set_device(torch.device(str(device)))  # a "cuda…" name here
        dist.init_process_group(
            backend=backend, rank=processes.rank, world_size=processes.world_size
        )
    except Exception as exc:  # no MASTER_ADDR, a refused port, a missing GPU: one line
        raise EvalError(
            f"cannot start the {processes.world_size}-process group as rank {processes.rank} "
            f"({backend}): {reason(exc)}; {LAUNCH_HINT}"
        ) from None
    atexit.register(_stop_group)


def _stop_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _reachable(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` where the group can reach it: as it is, or on this rank's GPU when the group
    was started (by someone else) with NCCL alone."""
    if tensor.is_cuda or "gloo" in str(dist.get_backend_config()):
        return tensor
    return tensor.to(torch.device("cuda", torch.cuda.current_device()))


def sum_across(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed element-wise over every process, in place (itself alone in a lone
    process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        moved = _reachable(tensor)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        tensor.copy_(moved)
    return tensor


def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor`` (same shape on each), concatenated in rank order along the
    first dimension; a 0-d tensor gives one value per rank."""
    flat = _reachable(tensor.reshape(1) if tensor.dim() == 0 else tensor.contiguous())
    parts = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, flat)
    return torch.cat(parts).to(tensor.device)


def gather_object(obj, dst: int = 0):
    """Every process's ``obj`` (picklable), as a list in rank order on rank ``dst``; ``None``
    on the others."""
    out = [None] * dist.get_world_size() if dist.get_rank() == dst else None
    dist.gather_object(obj, out, dst=dst)
    return out


def barrier() -> None:
    """Wait until every process gets here."""
    dist.barrier()
