"""Checkpoints of a training run: written whole or not at all, verified before they are trusted.

``OUTPUT_DIR/checkpoints/step-N/`` holds the trainable weights (``trainable.safetensors``), the
optimiser and schedule (``state.pt``) and ``progress.json`` (the step, the world size, the loop
settings and the SHA-256 of the other two files), written last. A checkpoint is built under a
temporary name and renamed into place, so a crash leaves none or a whole one; resuming checks every
checksum and falls back to the newest intact checkpoint, saying why the newer ones were passed
over (:func:`resume_checkpoint`). Only the newest ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from diffutron_common import fsync_tree, temp_sibling
from diffutron_common.text import file_sha256
from diffutron_train.errors import TrainError

logger = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
PROGRESS = "progress.json"
FILES = ("trainable.safetensors", "state.pt")


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoint folders of a run, oldest first."""
    folder = Path(output_dir) / CHECKPOINTS
    found = [p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def save_checkpoint(output_dir: Path, step: int, model, optimizer, scheduler, settings, world):
    """Write ``checkpoints/step-{step}`` atomically (replacing one of the same step), then drop
    all but the newest ``settings.keep_last``."""
    from safetensors.torch import save_file

    folder = Path(output_dir) / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step}"
    tmp = temp_sibling(final)
    try:
        tmp.mkdir()
        save_file(
            {n: p.detach().cpu().contiguous() for n, p in trainable(model).items()},
            tmp / "trainable.safetensors",
        )
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            tmp / "state.pt",
        )
        progress = {
            "step": step,
            "world_size": world,
            "settings": asdict(settings),
            "sha256": {name: file_sha256(tmp / name) for name in FILES},
        }
        (tmp / PROGRESS).write_text(json.dumps(progress), encoding="utf-8")
        fsync_tree(tmp)  # on disk before older checkpoints are pruned
        if final.exists():  # a damaged checkpoint of this step, passed over when resuming
            aside = temp_sibling(final)
            os.replace(final, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoints(output_dir)[: -settings.keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def verify(path: Path) -> str | None:
    """Why checkpoint ``path`` cannot be trusted, or None when every checksum matches."""
    try:
        progress = json.loads((path / PROGRESS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {PROGRESS}"
    except (OSError, ValueError):
        return f"{PROGRESS} is damaged"
    if not isinstance(progress, dict) or not isinstance(progress.get("step"), int):
        return f"{PROGRESS} is damaged"
    sums = progress.get("sha256")
    if not isinstance(sums, dict):
        return f"{PROGRESS} has no checksums (written by an older version)"
    for name in FILES:
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file_sha256(file) != sums.get(name):
            return f"{name} does not match its checksum"
    return None


def newest_intact(output_dir: str | Path) -> Path | None:
    """The newest checkpoint whose files match their checksums; each newer one that does not is
    named in a warning."""
    for path in reversed(checkpoints(output_dir)):
        problem = verify(path)
        if problem is None:
            return path
        logger.warning("checkpoint %s is damaged (%s); trying an older one", path, problem)
    return None


def load_checkpoint(path: Path, model, optimizer, scheduler, world: int) -> int:
    """Restore weights, optimiser and schedule from a verified checkpoint; return its step."""
    from safetensors.torch import load_file

    progress = json.loads((path / PROGRESS).read_text(encoding="utf-8"))
    saved_world = progress.get("world_size", 1)
    if saved_world != world:
        raise TrainError(
            f"checkpoint {path} was written by {saved_world} process(es); "
            f"resume it with {saved_world}, not {world}"
        )
    weights = load_file(path / "trainable.safetensors")
    params = trainable(model)
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


def resume_checkpoint(output_dir: Path, model, optimizer, scheduler, world: int, total: int) -> int:
    """``--resume``: restore the newest intact checkpoint under ``output_dir`` and return its
    step. Refused when there is none, or when it is past this run's ``total`` steps."""
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
    return step
