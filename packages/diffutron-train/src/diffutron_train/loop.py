"""A small, resumable training loop shared by CPT and SFT.

Data order, masking noise, optimiser and schedule are all derived from the seed and the step, and
every checkpoint holds the trainable weights, optimiser, schedule and random state: a run stopped
after a checkpoint and resumed ends with the same weights as one that never stopped. Checkpoints
are written to a temporary folder and renamed into place, so a crash never leaves a half-written
one; only the newest ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from diffutron_train.objectives import masked_lm_loss

logger = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


class TrainError(ValueError):
    """A user's mistake in a training run, in one line."""


@dataclass
class LoopSettings:
    objective: Literal["mlm", "mdlm"] = "mlm"
    mlm_probability: float = 0.15
    normalization: Literal["sequence", "token"] = "sequence"
    batch_size: int = 8
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    optimizer: Literal["adamw", "paged_adamw_8bit"] = "adamw"
    save_every: int = 50
    keep_last: int = 2
    log_every: int = 10
    seed: int = 0

    def total_steps(self, rows: int) -> int:
        per_epoch = math.ceil(rows / (self.batch_size * self.grad_accum))
        steps = math.ceil(per_epoch * self.epochs)
        return min(steps, self.max_steps) if self.max_steps is not None else steps


def _optimizer(params, settings: LoopSettings):
    if settings.optimizer == "paged_adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(
            params, lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _batch_indices(rows: int, step: int, micro: int, settings: LoopSettings) -> torch.Tensor:
    """Row indices of micro-batch ``micro`` of optimiser step ``step``: each epoch is a seeded
    permutation, so the order depends only on the seed and the position in the run."""
    size = settings.batch_size
    first = (step * settings.grad_accum + micro) * size
    epoch = first // rows
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(settings.seed + epoch))
    positions = torch.arange(first, first + size) % rows
    return order[positions]


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / CHECKPOINTS
    found = [p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def _save_checkpoint(output_dir: Path, step: int, model, optimizer, scheduler, noise, settings):
    from safetensors.torch import save_file

    folder = output_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {n: p.detach().cpu().contiguous() for n, p in _trainable(model).items()},
        tmp / "trainable.safetensors",
    )
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "noise": noise.get_state(),
            "torch_rng": torch.get_rng_state(),  # dropout
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        tmp / "state.pt",
    )
    (tmp / "progress.json").write_text(
        json.dumps({"step": step, "settings": asdict(settings)}), encoding="utf-8"
    )
    os.replace(tmp, folder / f"step-{step}")
    for old in _checkpoints(output_dir)[: -settings.keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(path: Path, model, optimizer, scheduler, noise) -> int:
    from safetensors.torch import load_file

    weights = load_file(path / "trainable.safetensors")
    params = _trainable(model)
    missing = set(params) - set(weights)
    if missing:
        raise TrainError(
            f"checkpoint {path} does not match this model ({len(missing)} weights missing)"
        )
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    state = torch.load(path / "state.pt", weights_only=True)  # our own file; tensors only
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    noise.set_state(state["noise"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return json.loads((path / "progress.json").read_text(encoding="utf-8"))["step"]


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
) -> int:
    """Train ``model`` in place on ``rows`` (features the ``collate`` function batches); return the
    number of optimiser steps done. ``stop_after`` ends early (to simulate an interruption)."""
    from transformers import get_cosine_schedule_with_warmup

    output_dir = Path(output_dir)
    if not rows:
        raise TrainError("no training rows: the data set is empty")
    total = settings.total_steps(len(rows))
    device = next(model.parameters()).device
    optimizer = _optimizer([p for p in model.parameters() if p.requires_grad], settings)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * total), total
    )
    noise = torch.Generator(device=device).manual_seed(settings.seed)
    torch.manual_seed(settings.seed)  # dropout; restored from the checkpoint on resume
    step = 0
    if resume:
        found = _checkpoints(output_dir)
        if not found:
            raise TrainError(f"--resume: no checkpoint under {output_dir / CHECKPOINTS}")
        step = _load_checkpoint(found[-1], model, optimizer, scheduler, noise)
        logger.info("resumed from %s (step %d of %d)", found[-1], step, total)
    model.train()
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=step,
        desc="training",
        unit="step",
        disable=os.environ.get("DIFFUTRON_NO_PROGRESS", "") in ("1", "true", "yes"),
    )
    while step < total and (stop_after is None or step < stop_after):
        optimizer.zero_grad(set_to_none=True)
        running = 0.0
        for micro in range(settings.grad_accum):
            index = _batch_indices(len(rows), step, micro, settings)
            batch = collate([rows[int(i)] for i in index])
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = masked_lm_loss(
                model,
                batch["input_ids"],
                batch["maskable"].bool(),
                mask_token_id=mask_token_id,
                objective=settings.objective,
                mlm_probability=settings.mlm_probability,
                attention_mask=batch.get("attention_mask"),
                normalization=settings.normalization,
                generator=noise,
            )
            (loss / settings.grad_accum).backward()
            running += loss.item() / settings.grad_accum
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        if log is not None and (step % settings.log_every == 0 or step == total):
            log({"step": step, "loss": running, "lr": scheduler.get_last_lr()[0]})
        if step % settings.save_every == 0 or step == total:
            _save_checkpoint(output_dir, step, model, optimizer, scheduler, noise, settings)
    bar.close()
    return step


def export_model(
    model, tokenizer, output_dir: str | Path, *, sampler_config: dict[str, Any] | None = None
) -> Path:
    """Write a plain Hugging Face model directory (LoRA merged in, safetensors, tokenizer with its
    chat template, and the sampler defaults as ``sampler_config.json``, the file diffutron-sample
    reads), replacing ``output_dir`` in one rename."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    tmp = output_dir.parent / f".{output_dir.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if sampler_config is not None:
        (tmp / "sampler_config.json").write_text(
            json.dumps(sampler_config, indent=2) + "\n", encoding="utf-8"
        )
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)
    return output_dir


RUN_FILE = "run.json"


def start_run(settings: dict[str, Any], output_dir: str | Path, *, resume: bool) -> Path:
    """Claim ``output_dir`` for a run described by ``settings`` (JSON-able): refuse a folder whose
    checkpoints or model come from a different run (nothing is overwritten) and ``resume`` where
    nothing was trained; write ``run.json`` (the resolved settings)."""
    out = Path(output_dir)
    saved = out / RUN_FILE
    current = json.loads(json.dumps(settings))
    worked = (out / CHECKPOINTS).is_dir() or (out / "model").is_dir()
    if saved.is_file() and worked:  # a run that failed before training holds nothing to protect
        if json.loads(saved.read_text(encoding="utf-8")) != current:
            raise TrainError(
                f"{out} holds a different run; choose another --output-dir or repeat its settings"
            )
    elif resume:
        raise TrainError(f"--resume: {out} holds no checkpoint to resume from")
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return out


def jsonl_logger(path: str | Path) -> Callable[[dict[str, Any]], None]:
    """A ``log`` callback for :func:`train_loop` appending one JSON line per record."""
    path = Path(path)

    def log(record: dict[str, Any]) -> None:
        logger.info("step %(step)d: loss %(loss).4f, lr %(lr).2e", record)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    return log


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
) -> Path:
    """:func:`train_loop` with a JSON log in ``output_dir/log.jsonl``, then :func:`export_model`
    to ``output_dir/model``; returns the model dir, or ``output_dir`` when stopped early."""
    done = train_loop(
        model,
        rows,
        collate,
        output_dir,
        settings,
        mask_token_id=tokenizer.mask_token_id,
        resume=resume,
        stop_after=stop_after,
        log=jsonl_logger(output_dir / "log.jsonl"),
    )
    if done < settings.total_steps(len(rows)):
        return output_dir  # stopped on purpose: resume later
    return export_model(model, tokenizer, output_dir / "model", sampler_config=sampler_config)
