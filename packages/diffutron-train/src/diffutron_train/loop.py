"""A small, resumable training loop shared by CPT and SFT, on one device or many.

Data order, masking noise and dropout are derived from the seed and the position in the run (step,
micro-batch, rank), and every checkpoint holds the trainable weights, optimiser and schedule: a
run stopped after a checkpoint and resumed ends with the same weights as one that never stopped.
Checkpoints are written to a temporary folder and renamed into place, so a crash never leaves a
half-written one; only the newest ``keep_last`` are kept.

Under ``torchrun`` or ``accelerate launch`` the loop runs data-parallel through
:class:`accelerate.Accelerator` (DDP; FSDP or DeepSpeed by an accelerate config file): each rank
takes its own rows of every step, gradients are averaged, and rank 0 alone writes checkpoints,
logs and the exported model. Mixed precision is chosen automatically (bf16, else fp16, on a GPU;
fp32 on the CPU) unless set.
"""

from __future__ import annotations

import contextlib
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

from diffutron_train.objectives import MaskedLMObjective

logger = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
_SEED_STRIDE = 1_000_003  # separates the draws of different seeds


class TrainError(ValueError):
    """A user's mistake in a training run, in one line."""


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

    def total_steps(self, rows: int, world_size: int = 1) -> int:
        per_epoch = math.ceil(rows / (self.batch_size * self.grad_accum * world_size))
        steps = math.ceil(per_epoch * self.epochs)
        return min(steps, self.max_steps) if self.max_steps is not None else steps


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


def _cpu_only() -> bool:
    """No accelerator to use: accelerate then runs a ``torchrun`` launch as multi-CPU (gloo)."""
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def distributed_state():
    """accelerate's process state (rank, world size), started for CPU-only machines too."""
    from accelerate import PartialState

    return PartialState(cpu=_cpu_only())


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


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / CHECKPOINTS
    found = [p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def _save_checkpoint(output_dir: Path, step: int, model, optimizer, scheduler, settings, world):
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
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        tmp / "state.pt",
    )
    (tmp / "progress.json").write_text(
        json.dumps({"step": step, "world_size": world, "settings": asdict(settings)}),
        encoding="utf-8",
    )
    os.replace(tmp, folder / f"step-{step}")
    for old in _checkpoints(output_dir)[: -settings.keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(path: Path, model, optimizer, scheduler, world: int) -> int:
    from safetensors.torch import load_file

    progress = json.loads((path / "progress.json").read_text(encoding="utf-8"))
    saved_world = progress.get("world_size", 1)
    if saved_world != world:
        raise TrainError(
            f"checkpoint {path} was written by {saved_world} process(es); "
            f"resume it with {saved_world}, not {world}"
        )
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
    return progress["step"]


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
    number of optimiser steps done. ``stop_after`` ends early (to simulate an interruption).
    ``log`` is called on rank 0 only, with the loss averaged over the steps since the last record
    and over ranks."""
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    output_dir = Path(output_dir)
    if not rows:
        raise TrainError("no training rows: the data set is empty")
    distributed_state()
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(settings.mixed_precision), cpu=_cpu_only()
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
        found = _checkpoints(output_dir)
        if not found:
            raise TrainError(f"--resume: no checkpoint under {output_dir / CHECKPOINTS}")
        step = _load_checkpoint(found[-1], model, optimizer, scheduler, world)
        logger.info("resumed from %s (step %d of %d)", found[-1], step, total)
    wrapped.train()
    from tqdm.auto import tqdm

    quiet = os.environ.get("DIFFUTRON_NO_PROGRESS", "") in ("1", "true", "yes")
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
                _save_checkpoint(output_dir, step, model, optimizer, scheduler, settings, world)
            accelerator.wait_for_everyone()
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


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (``torchrun``/``accelerate launch``), or a lone process."""
    return int(os.environ.get("RANK", "0")) == 0


def main_process_first():
    """A context where rank 0 runs first and the other ranks after it (for work on shared files:
    claiming the run folder, building the corpus); a plain context in a lone process."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return contextlib.nullcontext()
    return distributed_state().main_process_first()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    _write_atomic(saved, json.dumps(current, indent=2) + "\n")
    return out


class RunLog:
    """The ``log`` callback of :func:`train_loop`: one JSON line per record in ``log.jsonl`` and
    the same scalars as TensorBoard events under ``tensorboard/`` (``tensorboard --logdir``)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / "log.jsonl"
        self._writer = None

    def __call__(self, record: dict[str, Any]) -> None:
        logger.info("step %(step)d: loss %(loss).4f, lr %(lr).2e", record)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.output_dir / "tensorboard"))
        for key, value in record.items():
            if key != "step":
                self._writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl``, in order, keeping only the last of a step written twice
    (a run resumed from a checkpoint before its last logged step repeats those steps)."""
    records: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["step"]] = record
    return [records[k] for k in sorted(records)]


def plot_loss_curve(log_path: str | Path, png_path: str | Path, *, title: str = "") -> Path | None:
    """Draw training loss against step from ``log.jsonl`` as a PNG; None if nothing was logged."""
    records = read_log(log_path) if Path(log_path).is_file() else []
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot([r["step"] for r in records], [r["loss"] for r in records], marker=".", lw=1)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_title(title or Path(log_path).parent.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path


def push_to_hub(model_dir: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload an exported model directory to the Hub (the token from ``hf auth login`` or
    ``HF_TOKEN``); returns the repository's URL. Never called by tests or default commands."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            folder_path=str(model_dir),
            repo_id=repo_id,
            repo_type="model",
            commit_message="Upload Diffutron model",
        )
    except Exception as exc:  # network, auth, offline mode: one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrainError(f"--push-to-hub {repo_id}: {reason}") from None
    return str(url)


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
        export_model(model, tokenizer, target, sampler_config=sampler_config)
    distributed_state().wait_for_everyone()
    return target
