"""One optimiser step of :func:`~diffutron_train.loop.train_loop`, and what it draws.

Which rows a micro-batch takes, its masking noise and its dropout all follow from the seed and the
position in the run (step, micro-batch, rank), never from what ran before: a run resumed from a
checkpoint draws exactly what an uninterrupted one would have. :class:`Trainer` holds the
objective, optimiser and schedule that accelerate has prepared, and takes one step at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from diffutron_core import dropout_seed, generator, mask_seed, shuffle_seed
from diffutron_train.objectives import MaskedLMObjective
from diffutron_train.settings import LoopSettings

Rows = Sequence[dict[str, Any]]
"""The training rows: one dict of features each."""
Collate = Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]
"""Batches a list of rows into tensors (``input_ids``, ``maskable``, maybe ``attention_mask``)."""


def _optimizer(params, settings: LoopSettings):
    """The optimiser ``settings.optimizer`` names, over ``params``."""
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
    order = torch.randperm(rows, generator=generator(shuffle_seed(settings.seed, epoch)))
    positions = torch.arange(first, first + size) % rows
    return order[positions]


@dataclass
class Trainer:
    """A run's moving parts once accelerate has prepared them: everything an optimiser step
    touches. Built by :meth:`prepare`."""

    rows: Rows
    collate: Collate
    settings: LoopSettings
    accelerator: Any
    wrapped: Any
    """The objective (its forward returns the loss), wrapped for data parallelism."""
    optimizer: Any
    scheduler: Any
    trainable: list[torch.nn.Parameter]
    noise: torch.Generator = field(init=False)
    """Draws the masking noise; seeded again for every micro-batch."""

    def __post_init__(self) -> None:
        self.noise = torch.Generator(device=self.accelerator.device)

    @classmethod
    def prepare(
        cls,
        model,
        rows: Rows,
        collate: Collate,
        settings: LoopSettings,
        accelerator,
        *,
        mask_token_id: int,
        total: int,
    ) -> Trainer:
        """The objective around ``model``, its optimiser over the trainable weights and a cosine
        schedule with warm-up over ``total`` steps."""
        from transformers import get_cosine_schedule_with_warmup

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
        return cls(rows, collate, settings, accelerator, wrapped, optimizer, scheduler, trainable)

    def micro_batch(self, step: int, micro: int) -> dict[str, torch.Tensor]:
        """Seed the masking noise and dropout of micro-batch ``micro`` of step ``step`` on this
        rank, and collate its rows onto the device."""
        settings, accelerator = self.settings, self.accelerator
        rank, world = accelerator.process_index, accelerator.num_processes
        draw = _draw(step, micro, settings, rank=rank, world=world)
        self.noise.manual_seed(mask_seed(settings.seed, draw))
        torch.manual_seed(dropout_seed(settings.seed, draw))
        index = _batch_indices(len(self.rows), step, micro, settings, rank=rank, world=world)
        batch = self.collate([self.rows[int(i)] for i in index])
        return {k: v.to(accelerator.device) for k, v in batch.items()}

    def step(self, step: int) -> torch.Tensor:
        """Optimiser step ``step``: its micro-batches (gradients synchronised over ranks on the
        last one only), clipping, the update and the schedule. Returns this rank's loss."""
        settings, accelerator = self.settings, self.accelerator
        self.optimizer.zero_grad(set_to_none=True)
        running = torch.zeros((), device=accelerator.device)
        for micro in range(settings.grad_accum):
            batch = self.micro_batch(step, micro)
            last = micro == settings.grad_accum - 1
            with accelerator.no_sync(self.wrapped) if not last else contextlib.nullcontext():
                loss = self.wrapped(
                    batch["input_ids"],
                    batch["maskable"],
                    attention_mask=batch.get("attention_mask"),
                    generator=self.noise,
                )
                accelerator.backward(loss / settings.grad_accum)
            running += loss.detach().float() / settings.grad_accum
        if settings.max_grad_norm is not None:
            accelerator.clip_grad_norm_(self.trainable, settings.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return running
