"""A small, resumable training loop shared by CPT and SFT, on one device or many.

Each optimiser step (:mod:`diffutron_train.steps`) draws its rows, masking noise and dropout from
the seed and the position in the run (step, micro-batch, rank), and every checkpoint holds the
trainable weights, optimiser and schedule: a run stopped after a checkpoint and resumed ends with
the same weights as one that never stopped. Checkpoints (:mod:`diffutron_train.checkpoints`) are
written whole or not at all and verified by their checksums before a resume trusts them.

Under ``torchrun`` or ``accelerate launch`` the loop runs data-parallel through
:class:`accelerate.Accelerator` (DDP only; see :mod:`diffutron_train.distributed`): each rank takes
its own rows of every step, gradients are averaged, and rank 0 alone writes checkpoints, logs and
the exported model. Mixed precision is chosen automatically (bf16, else fp16, on a GPU; fp32 on the
CPU) unless set.

The settings are :class:`~diffutron_train.settings.LoopSettings`; :func:`train_and_export` adds
the run's logs (:mod:`diffutron_train.logs`) and the export (:mod:`diffutron_train.export`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from diffutron_common import progress_enabled
from diffutron_train.checkpoints import resume_checkpoint, save_checkpoint
from diffutron_train.distributed import (
    data_parallel_accelerator,
    distributed_state,
    is_main_process,
)
from diffutron_train.errors import TrainError
from diffutron_train.export import export_model
from diffutron_train.logs import RunLog, plot_loss_curve
from diffutron_train.runs import RunState
from diffutron_train.settings import LoopSettings
from diffutron_train.steps import Collate, Rows, Trainer

__all__ = ["train_and_export", "train_loop"]


def _progress_bar(total: int, step: int):
    """A bar over the run's optimiser steps, from ``step``; shown on rank 0 only, and only when
    progress is shown at all."""
    from tqdm.auto import tqdm

    quiet = not progress_enabled()
    return tqdm(
        total=total,
        initial=step,
        desc="training",
        unit="step",
        disable=quiet or not is_main_process(),
    )


def train_loop(
    model,
    rows: Rows,
    collate: Collate,
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
    output_dir = Path(output_dir)
    if not rows:
        raise TrainError("no training rows: the data set is empty")
    accelerator = data_parallel_accelerator(settings.mixed_precision)
    world, device = accelerator.num_processes, accelerator.device
    total = settings.total_steps(len(rows), world)
    trainer = Trainer.prepare(
        model, rows, collate, settings, accelerator, mask_token_id=mask_token_id, total=total
    )
    optimizer, scheduler = trainer.optimizer, trainer.scheduler
    step = resume_checkpoint(output_dir, model, optimizer, scheduler, world, total) if resume else 0
    if on_start is not None:
        on_start()
    trainer.wrapped.train()
    bar = _progress_bar(total, step)
    interval, interval_steps = torch.zeros((), device=device), 0  # loss since the last log
    while step < total and (stop_after is None or step < stop_after):
        running = trainer.step(step)
        step += 1
        bar.update(1)
        interval, interval_steps = interval + running, interval_steps + 1
        if step % settings.log_every == 0 or step == total:
            # the mean over the steps since the last record and over ranks (every rank joins)
            mean = accelerator.reduce(interval / interval_steps, reduction="mean").item()
            interval, interval_steps = torch.zeros((), device=device), 0
            if log is not None and is_main_process():
                log({"step": step, "loss": mean, "lr": scheduler.get_last_lr()[0]})
        if step % settings.save_every == 0 or step == total:
            if is_main_process():
                save_checkpoint(output_dir, step, model, optimizer, scheduler, settings, world)
            accelerator.wait_for_everyone()
    bar.close()
    return step


def train_and_export(
    model,
    tokenizer,
    rows,
    collate,
    state: RunState,
    settings: LoopSettings,
    *,
    stop_after: int | None,
    sampler_config: dict[str, Any] | None = None,
) -> Path:
    """:func:`train_loop` in the run folder ``state`` holds (see
    :func:`diffutron_train.runs.start_run`), with its log (``log.jsonl``, TensorBoard,
    ``loss.png``), then :func:`export_model` to ``model/`` on rank 0; returns the model dir, or
    the run folder when stopped early. The run's settings are committed to ``run.json`` once
    training starts."""
    output_dir = state.folder
    log = RunLog(output_dir) if is_main_process() else None
    try:
        done = train_loop(
            model,
            rows,
            collate,
            output_dir,
            settings,
            mask_token_id=tokenizer.mask_token_id,
            resume=state.resume,
            stop_after=stop_after,
            log=log,
            on_start=state.commit,
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
            model, tokenizer, target, sampler_config=sampler_config, step=done, run_id=state.run_id
        )
    distributed_state().wait_for_everyone()
    return target
