"""The run folder: what a training run owns, what it was started with, and what it logged.

``OUTPUT_DIR`` carries Diffutron's marker (kind ``run``) and ``run.json``, the resolved settings
(with the fingerprint of the training data), next to ``data/``, ``checkpoints/``, ``log.jsonl``,
``tensorboard/``, ``loss.png`` and the exported ``model/``. :func:`start_run` decides what a
command may do with a folder:

* absent, empty, or a run folder where nothing was trained yet: start (with any settings);
* a run of the same settings that has been exported at its newest checkpoint: finished, nothing
  to do (say so and return the model);
* the same settings, not finished: ``--resume`` continues from the newest intact checkpoint;
  without it the folder is refused, so that no checkpoint is overwritten by accident;
* the same settings but another length (``epochs``, ``max_steps``): ``--resume`` continues
  to the new length; without it, refused;
* other settings, or other training data: refused, whatever the flags;
* a folder that holds anything Diffutron did not make: refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffutron_common import (
    DiffutronError,
    PathError,
    atomic_path,
    check_replaceable,
    claim_folder,
    read_marker,
    read_text,
    remove_owned,
    remove_stale_temps,
    write_text,
)
from diffutron_train.checkpoints import CHECKPOINTS, checkpoints
from diffutron_train.distributed import is_main_process
from diffutron_train.errors import TrainError

logger = logging.getLogger(__name__)
RUN_FILE = "run.json"
RUN_KIND = "run"
MODEL_KIND = "model"
DATA_KINDS = ("cpt-data", "sft-data")
LENGTH_KEYS = ("loop.epochs", "loop.max_steps")
"""Settings a resumed run may change: it then trains on to the new length."""
IGNORED_KEYS = (
    "output_dir",
    "num_proc",
    "trust_remote_code",
    "loop.log_every",
    "loop.save_every",
    "loop.keep_last",
)
"""Settings that do not change what a run computes: recorded, never compared."""


def significant(settings: Any, prefix: str = "") -> Any:
    """``settings`` without the :data:`IGNORED_KEYS`."""
    if not isinstance(settings, dict):
        return settings
    out = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if name not in IGNORED_KEYS:
            out[key] = significant(value, name)
    return out


def run_id(settings: dict[str, Any]) -> str:
    blob = json.dumps(significant(settings), sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class RunState:
    folder: Path
    finished: bool = False
    """The model was exported at the newest checkpoint of these very settings."""
    trained: bool = False
    """Checkpoints or an exported model exist (there is work to protect)."""
    resume: bool = False
    """Continue from the newest intact checkpoint."""
    created: str | None = None
    """``"new"`` when this call made the folder, ``"empty"`` when it claimed an empty one: a run
    that fails on bad input before training then leaves nothing behind."""
    run_id: str = ""
    """A hash of the settings that decide the result: the exported model carries it, so a model
    counts as this run's only when it was made by these very settings."""
    pending: dict[str, Any] | None = None
    """Settings to record in ``run.json`` once training has really started (a resume to a new
    length), so a refused resume leaves the record as it was."""

    def commit(self) -> None:
        """Record the pending settings (rank 0): called when training starts."""
        if self.pending is not None and is_main_process():
            write_text(self.folder / RUN_FILE, json.dumps(self.pending, indent=2) + "\n")
        self.pending = None

    @property
    def model(self) -> Path:
        return self.folder / "model"


@contextlib.contextmanager
def undo_if_failed(state: RunState):
    """Around the work before training (building the data, the model): if it fails on a user's
    input in a folder this run created, the folder is removed, so a typo leaves nothing behind.
    An interruption (Ctrl-C, SIGTERM) keeps the folder for ``--resume``."""
    try:
        yield
    except DiffutronError:
        if state.created and is_main_process():
            with contextlib.suppress(DiffutronError, OSError):  # never hide the user's error
                if state.created == "new":
                    remove_owned(state.folder, RUN_KIND, option="--output-dir")
                else:  # the user's empty folder stays; what this run put in it goes
                    for child in state.folder.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
        raise


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings whose values differ between two JSON-like values."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out += differences(saved.get(key), current.get(key), name)
        return out
    return [] if saved == current else [prefix or "settings"]


def _saved_settings(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except (DiffutronError, ValueError):
        raise TrainError(
            f"{path} is damaged; the run's settings are unknown: choose another --output-dir"
        ) from None


def start_run(settings: dict[str, Any], output_dir: str | Path, *, resume: bool) -> RunState:
    """Claim ``output_dir`` for a run described by ``settings`` (JSON-able), by the rules of the
    module docstring; write ``run.json``; clear what a killed run left half-written."""
    out = Path(output_dir)
    saved_path = out / RUN_FILE
    try:
        check_replaceable(out, RUN_KIND, option="--output-dir")
        if resume and not saved_path.is_file():
            raise TrainError(
                f"--resume: {out} holds no run to resume; leave out --resume to start one there"
            )
        for inner, kinds in (("model", MODEL_KIND), ("data", DATA_KINDS)):
            check_replaceable(out / inner, kinds, option=f"the run's {inner} folder")
        created = "new" if not out.exists() else "empty" if not any(out.iterdir()) else None
        if is_main_process():
            claim_folder(out, RUN_KIND, option="--output-dir")
            remove_stale_temps(out)
            remove_stale_temps(out / CHECKPOINTS)
    except PathError as exc:
        raise TrainError(str(exc)) from None
    current = json.loads(json.dumps(settings))
    found = checkpoints(out)
    model = read_marker(out / "model")
    state = RunState(
        out, trained=bool(found) or model is not None, created=created, run_id=run_id(current)
    )
    if state.trained and not saved_path.is_file():
        raise TrainError(
            f"{out} holds checkpoints or a model but no {RUN_FILE}: what it was trained with is "
            "unknown; choose another --output-dir"
        )
    if saved_path.is_file() and (state.trained or resume):
        changed = [
            name
            for name in differences(_saved_settings(saved_path), current)
            if name not in IGNORED_KEYS
        ]
        other = [name for name in changed if name not in LENGTH_KEYS]
        settings_changed = [name for name in other if name != "data_fingerprint"]
        if settings_changed:
            raise TrainError(
                f"{'--resume: ' if resume else ''}{out} holds a different run "
                f"({', '.join(settings_changed[:5])} differ); choose another --output-dir or "
                "repeat its settings"
            )
        if other and state.trained:  # data of a run that never trained is simply rebuilt
            raise TrainError(
                f"{out} was trained on other data (its sources' contents or data settings "
                "changed since); choose another --output-dir, or restore the data it was made from"
            )
        newest = int(found[-1].name[5:]) if found else None
        exported_here = model is not None and model.get("run") == state.run_id
        if not changed and exported_here and model.get("step") == newest:
            state.finished = True
            logger.warning(
                "%s is finished: its model is %s (to train on, --resume with a larger "
                "--max-steps or --epochs)",
                out,
                out / "model",
            )
            return state
        if not resume:
            if changed:
                raise TrainError(
                    f"{out} holds this run with another length ({', '.join(changed)}); pass "
                    "--resume to continue it to the new length, or choose another --output-dir"
                )
            where = f"newest checkpoint: step {newest}" if newest is not None else "no checkpoint"
            raise TrainError(
                f"{out} holds an unfinished run ({where}); pass --resume to continue it, or "
                "choose another --output-dir"
            )
        state.resume = state.trained
        if differences(_saved_settings(saved_path), current):  # e.g. a new length
            state.pending = current  # recorded only once the resumed training has started
            return state
    if resume and not state.trained:
        logger.warning("--resume: %s has no checkpoint yet; starting from step 0", out)
    if is_main_process():
        write_text(saved_path, json.dumps(current, indent=2) + "\n")
    return state


class RunLog:
    """The ``log`` callback of :func:`~diffutron_train.loop.train_loop`: one JSON line per record
    in ``log.jsonl`` and the same scalars as TensorBoard events under ``tensorboard/``."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / "log.jsonl"
        self._writer = None

    def __call__(self, record: dict[str, Any]) -> None:
        logger.info("step %(step)d: loss %(loss).4f, lr %(lr).2e", record)
        with self.path.open("a+b") as handle:
            handle.seek(0, 2)
            if handle.tell():  # a run killed mid-line: start on a line of our own
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write((json.dumps(record) + "\n").encode("utf-8"))
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
    (a run resumed from a checkpoint before its last logged step repeats those steps). A line a
    killed run left unfinished is passed over."""
    records: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
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
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png_path
