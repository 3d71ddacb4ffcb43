"""The training loop's settings (:class:`LoopSettings`), checked when they are made."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from diffutron_common import check_number
from diffutron_train.errors import TrainError

CHOICES = {
    "objective": ("mlm", "mdlm"),
    "normalization": ("sequence", "token"),
    "optimizer": ("adamw", "paged_adamw_8bit"),
    "mixed_precision": ("auto", "no", "fp16", "bf16"),
}

__all__ = ["CHOICES", "LoopSettings"]


@dataclass(frozen=True)
class LoopSettings:
    """What :func:`~diffutron_train.loop.train_loop` is told: the objective, the batch, the
    length, the optimiser and its schedule, precision, checkpoints, logging and the seed.
    Checked on creation (:meth:`validate`)."""

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
        check_number(
            "mlm_probability",
            self.mlm_probability,
            minimum=0,
            maximum=1,
            min_open=True,
            max_open=True,
            error=TrainError,
        )
        for name in ("batch_size", "grad_accum", "save_every", "keep_last", "log_every"):
            check_number(
                name,
                getattr(self, name),
                minimum=1,
                maximum=2**31 - 1,
                integer=True,
                error=TrainError,
            )
        check_number("epochs", self.epochs, minimum=0, maximum=1e6, min_open=True, error=TrainError)
        if self.max_steps is not None:
            check_number(
                "max_steps",
                self.max_steps,
                minimum=1,
                maximum=2**31 - 1,
                integer=True,
                error=TrainError,
            )
        check_number(
            "learning_rate", self.learning_rate, minimum=0, min_open=True, error=TrainError
        )
        check_number("warmup_ratio", self.warmup_ratio, minimum=0, maximum=1, error=TrainError)
        check_number("weight_decay", self.weight_decay, minimum=0, error=TrainError)
        if self.max_grad_norm is not None:
            check_number(
                "max_grad_norm", self.max_grad_norm, minimum=0, min_open=True, error=TrainError
            )
        check_number(
            "seed", self.seed, minimum=0, maximum=2**31 - 1, integer=True, error=TrainError
        )

    def total_steps(self, rows: int, world_size: int = 1) -> int:
        """Optimiser steps of a run over ``rows`` rows on ``world_size`` processes: ``epochs``
        passes, at most ``max_steps``."""
        per_epoch = math.ceil(rows / (self.batch_size * self.grad_accum * world_size))
        steps = math.ceil(per_epoch * self.epochs)
        return min(steps, self.max_steps) if self.max_steps is not None else steps
