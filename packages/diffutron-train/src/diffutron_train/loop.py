"""A small, resumable training loop shared by CPT and SFT, on one device or many.

Data order, masking noise and dropout are derived from the seed and the position in the run (step,
micro-batch, rank), and every checkpoint holds the trainable weights, optimiser and schedule: a
run stopped after a checkpoint and resumed ends with the same weights as one that never stopped.
Checkpoints (:mod:`diffutron_train.checkpoints`) are written whole or not at all and verified by
their checksums before a resume trusts them.

Under ``torchrun`` or ``accelerate launch`` the loop runs data-parallel through
:class:`accelerate.Accelerator` (DDP; FSDP or DeepSpeed by an accelerate config file): each rank
takes its own rows of every step, gradients are averaged, and rank 0 alone writes checkpoints,
logs and the exported model. Mixed precision is chosen automatically (bf16, else fp16, on a GPU;
fp32 on the CPU) unless set.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from diffutron_common import check_number, progress_enabled
from diffutron_train.checkpoints import CHECKPOINTS, load_checkpoint, newest_intact, save_checkpoint
from diffutron_train.distributed import (
    cpu_only,
    distributed_state,
    is_main_process,
    resolve_mixed_precision,
)
from diffutron_train.errors import TrainError
from diffutron_train.export import export_model
from diffutron_train.objectives import MaskedLMObjective
from diffutron_train.runs import RunLog, plot_loss_curve

logger = logging.getLogger(__name__)
_SEED_STRIDE = 1_000_003  # separates the draws of different seeds
CHOICES = {
    "objective": ("mlm", "mdlm"),
    "normalization": ("sequence", "token"),
    "optimizer": ("adamw", "paged_adamw_8bit"),
    "mixed_precision": ("auto", "no", "fp16", "bf16"),
}

__all__ = ["LoopSettings", "TrainError", "train_and_export", "train_loop"]


@dataclass
class LoopSettings:
    objective: Literal["mlm", "mdlm"] = "mlm"
    mlm_probability: float = 0.15
    normalization: Literal["sequence", "token"] = "sequence"
    batch_size: int = 8
    """Rows per device and micro-batch; one optimiser step sees
    ``batch_size * grad_accum * world_size`` rows."""
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    optimizer: Literal["adamw", "paged_adamw_8bit"] = "adamw"
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    save_every: int = 50
    keep_last: int = 2
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`TrainError` for a setting of the wrong type, not finite, or out of
        range, naming it."""
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise TrainError(
                    f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
                )
        number = {"error": TrainError}
        check_number(
            "mlm_probability",
            self.mlm_probability,
            minimum=0,
            maximum=1,
            min_open=True,
            max_open=True,
            **number,
        )
        for name in ("batch_size", "grad_accum", "save_every", "keep_last", "log_every"):
            check_number(
                name, getattr(self, name), minimum=1, maximum=2**31 - 1, integer=True, **number
            )
        check_number("epochs", self.epochs, minimum=0, maximum=1e6, min_open=True, **number)
        if self.max_steps is not None:
            check_number(
                "max_steps", self.max_steps, minimum=1, maximum=2**31 - 1, integer=True, **number
            )
        check_number("learning_rate", self.learning_rate, minimum=0, min_open=True, **number)
        check_number("warmup_ratio", self.warmup_ratio, minimum=0, maximum=1, **number)
        check_number("weight_decay", self.weight_decay, minimum=0, **number)
        if self.max_grad_norm is not None:
            check_number("max_grad_norm", self.max_grad_norm, minimum=0, min_open=True, **number)
        check_number("seed", self.seed, minimum=0, maximum=2**31 - 1, integer=True, **number)

    def total_steps(self, rows: int, world_size: int = 1) -> int:
        per_epoch = math.ceil(rows / (self.batch_size * self.grad_accum * world_size))
        steps = math.ceil(per_epoch * self.epochs)
        return min(steps, self.max_steps) if self.max_steps is not None else steps


def _optimizer(params, settings: LoopSettings):
    if settings.optimizer == "paged_adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(
            params, lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _draw(step: int, micro: int, settings: LoopSettings, *, rank: int = 0, world: int = 1) -> int:
    """Position of one micro-batch of one rank in the run: the unit of data order and noise."""
    return (step * settings.grad_accum + micro) * world + rank


def _batch_indices(
    rows: int, step: int, micro: int, settings: LoopSettings, *, rank: int = 0, world: int = 1
) -> torch.Tensor:
    """Row indices of micro-batch ``micro`` of optimiser step ``step`` on ``rank``: each epoch is
    a seeded permutation, so the order depends only on the seed and the position in the run."""
    size = settings.batch_size
    first = _draw(step, micro, settings, rank=rank, world=world) * size
    epoch = first // rows
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(settings.seed + epoch))
    positions = torch.arange(first, first + size) % rows
    return order[positions]


def train_loop(
    model,
    rows: Sequence[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    output_dir: str | Path,
    settings: LoopSettings,
    *,
    mask_token_id: int,
    resume: bool = False,
    stop_after: int | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> int:
    """Train ``model`` in place on ``rows`` (features the ``collate`` function batches); return the
    number of optimiser steps done. ``stop_after`` ends early (to simulate an interruption).
    ``log`` is called on rank 0 only, with the loss averaged over the steps since the last record
    and over ranks. ``on_start`` runs once the checkpoint (if any) is loaded and checked, just
    before the first step."""
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    output_dir = Path(output_dir)
    if not rows:
        raise TrainError("no training rows: the data set is empty")
    distributed_state()
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(settings.mixed_precision), cpu=cpu_only()
    )
    kind = getattr(accelerator.distributed_type, "value", str(accelerator.distributed_type))
    if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
        raise TrainError(
            f"{kind} is not supported yet (checkpoints need whole tensors on rank 0); "
            "launch data-parallel instead (diffutron-train configs: accelerate/2gpu)"
        )
    rank, world = accelerator.process_index, accelerator.num_processes
    total = settings.total_steps(len(rows), world)
    objective = MaskedLMObjective(
        model,
        mask_token_id=mask_token_id,
        objective=settings.objective,
        mlm_probability=settings.mlm_probability,
        normalization=settings.normalization,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(trainable, settings)
    wrapped, optimizer = accelerator.prepare(objective, optimizer)
    # Not prepared: accelerate would step a prepared scheduler once per process.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * total), total
    )
    device = accelerator.device
    noise = torch.Generator(device=device)
    step = 0
    if resume:
        found = newest_intact(output_dir)
        if found is None:
            raise TrainError(f"--resume: no intact checkpoint under {output_dir / CHECKPOINTS}")
        step = load_checkpoint(found, model, optimizer, scheduler, world)
        if step > total:
            raise TrainError(
                f"{found} is at step {step}, past this run's {total} steps; resume with at "
                "least its length, or choose another --output-dir"
            )
        logger.info("resumed from %s (step %d of %d)", found, step, total)
    if on_start is not None:
        on_start()
    wrapped.train()
    from tqdm.auto import tqdm

    quiet = not progress_enabled()
    bar = tqdm(
        total=total,
        initial=step,
        desc="training",
        unit="step",
        disable=quiet or not accelerator.is_main_process,
    )
    interval, interval_steps = torch.zeros((), device=device), 0  # loss since the last log
    while step < total and (stop_after is None or step < stop_after):
        optimizer.zero_grad(set_to_none=True)
        running = torch.zeros((), device=device)
        for micro in range(settings.grad_accum):
            draw = _draw(step, micro, settings, rank=rank, world=world)
            noise.manual_seed(settings.seed * _SEED_STRIDE + draw)  # masking
            torch.manual_seed(settings.seed * _SEED_STRIDE + draw + (1 << 40))  # dropout
            index = _batch_indices(len(rows), step, micro, settings, rank=rank, world=world)
            batch = collate([rows[int(i)] for i in index])
            batch = {k: v.to(device) for k, v in batch.items()}
            last = micro == settings.grad_accum - 1
            with accelerator.no_sync(wrapped) if not last else contextlib.nullcontext():
                loss = wrapped(
                    batch["input_ids"],
                    batch["maskable"],
                    attention_mask=batch.get("attention_mask"),
                    generator=noise,
                )
                accelerator.backward(loss / settings.grad_accum)
            running += loss.detach().float() / settings.grad_accum
        if settings.max_grad_norm is not None:
            accelerator.clip_grad_norm_(trainable, settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        interval, interval_steps = interval + running, interval_steps + 1
        if step % settings.log_every == 0 or step == total:
            # the mean over the steps since the last record and over ranks (every rank joins)
            mean = accelerator.reduce(interval / interval_steps, reduction="mean").item()
            interval, interval_steps = torch.zeros((), device=device), 0
            if log is not None and accelerator.is_main_process:
                log({"step": step, "loss": mean, "lr": scheduler.get_last_lr()[0]})
        if step % settings.save_every == 0 or step == total:
            if accelerator.is_main_process:
                save_checkpoint(output_dir, step, model, optimizer, scheduler, settings, world)
            accelerator.wait_for_everyone()
    bar.close()
    return step


def train_and_export(
    model,
    tokenizer,
    rows,
    collate,
    output_dir: Path,
    settings: LoopSettings,
    *,
    resume: bool,
    stop_after: int | None,
    sampler_config: dict[str, Any] | None = None,
    on_start: Callable[[], None] | None = None,
    run_id: str | None = None,
) -> Path:
    """:func:`train_loop` with its log (``log.jsonl``, TensorBoard, ``loss.png``), then
    :func:`export_model` to ``output_dir/model`` on rank 0; returns the model dir, or
    ``output_dir`` when stopped early."""
    log = RunLog(output_dir) if is_main_process() else None
    try:
        done = train_loop(
            model,
            rows,
            collate,
            output_dir,
            settings,
            mask_token_id=tokenizer.mask_token_id,
            resume=resume,
            stop_after=stop_after,
            log=log,
            on_start=on_start,
        )
    finally:
        if log is not None:
            log.close()
    if is_main_process():
        plot_loss_curve(output_dir / "log.jsonl", output_dir / "loss.png")
    world = distributed_state().num_processes
    if done < settings.total_steps(len(rows), world):
        return output_dir  # stopped on purpose: resume later
    target = output_dir / "model"
    if is_main_process():
        export_model(
            model, tokenizer, target, sampler_config=sampler_config, step=done, run_id=run_id
        )
    distributed_state().wait_for_everyone()
    return target
