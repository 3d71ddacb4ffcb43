"""The run folder: what a training run owns and what it was started with.

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

``run.json`` and how two of them compare is :mod:`diffutron_train.records`; what the run logs
(``log.jsonl``, ``tensorboard/``, ``loss.png``), :mod:`diffutron_train.logs`; its checkpoints,
:mod:`diffutron_train.checkpoints`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffutron_common import (
    DiffutronError,
    PathError,
    check_replaceable,
    claim_folder,
    read_marker,
    remove_owned,
    remove_stale_temps,
)
from diffutron_train.checkpoints import CHECKPOINTS, checkpoints
from diffutron_train.distributed import is_main_process
from diffutron_train.errors import TrainError
from diffutron_train.records import (
    IGNORED_KEYS,
    LENGTH_KEYS,
    RUN_FILE,
    differences,
    read_record,
    run_id,
    write_record,
)

logger = logging.getLogger(__name__)
RUN_KIND = "run"
MODEL_KIND = "model"
DATA_KINDS = ("cpt-data", "sft-data")


@dataclass
class RunState:
    """What :func:`start_run` found in a run folder and decided to do with it."""

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
            write_record(self.folder, self.pending)
        self.pending = None

    @property
    def model(self) -> Path:
        """Where the run's model is exported."""
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


def _claim(out: Path, *, resume: bool) -> str | None:
    """Check that ``out`` may hold this run and claim it (rank 0), clearing what a killed run left
    half-written; return :attr:`RunState.created`."""
    try:
        check_replaceable(out, RUN_KIND, option="--output-dir")
        if resume and not (out / RUN_FILE).is_file():
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
    return created


def _refuse_another_run(out: Path, changed: list[str], *, trained: bool, resume: bool) -> None:
    """Refuse a folder whose run differs in more than its length: other settings, or (once
    trained) other training data."""
    other = [name for name in changed if name not in LENGTH_KEYS]
    settings_changed = [name for name in other if name != "data_fingerprint"]
    if settings_changed:
        raise TrainError(
            f"{'--resume: ' if resume else ''}{out} holds a different run "
            f"({', '.join(settings_changed[:5])} differ); choose another --output-dir or "
            "repeat its settings"
        )
    if other and trained:  # data of a run that never trained is simply rebuilt
        raise TrainError(
            f"{out} was trained on other data (its sources' contents or data settings "
            "changed since); choose another --output-dir, or restore the data it was made from"
        )


def _refuse_without_resume(out: Path, changed: list[str], newest: int | None) -> None:
    """Refuse to start over a run of these settings that is not finished: it takes ``--resume``."""
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


def _compare_with_saved(
    state: RunState,
    current: dict[str, Any],
    *,
    newest: int | None,
    model: dict[str, Any] | None,
    resume: bool,
) -> bool:
    """Hold ``current`` against the run recorded in ``run.json``: refuse another run, or an
    unfinished one without ``--resume``; else mark ``state`` finished, or resumed (with the new
    length pending). Returns whether ``run.json`` is to be left as it is for now."""
    out = state.folder
    saved = read_record(out)
    changed = [name for name in differences(saved, current) if name not in IGNORED_KEYS]
    _refuse_another_run(out, changed, trained=state.trained, resume=resume)
    exported_here = model is not None and model.get("run") == state.run_id
    if not changed and exported_here and model is not None and model.get("step") == newest:
        state.finished = True
        logger.warning(
            "%s is finished: its model is %s (to train on, --resume with a larger "
            "--max-steps or --epochs)",
            out,
            out / "model",
        )
        return True
    if not resume:
        _refuse_without_resume(out, changed, newest)
    state.resume = state.trained
    if differences(saved, current):  # e.g. a new length
        state.pending = current  # recorded only once the resumed training has started
        return True
    return False


def start_run(settings: dict[str, Any], output_dir: str | Path, *, resume: bool) -> RunState:
    """Claim ``output_dir`` for a run described by ``settings`` (JSON-able), by the rules of the
    module docstring; write ``run.json``; clear what a killed run left half-written."""
    out = Path(output_dir)
    saved_path = out / RUN_FILE
    created = _claim(out, resume=resume)
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
        newest = int(found[-1].name[5:]) if found else None
        if _compare_with_saved(state, current, newest=newest, model=model, resume=resume):
            return state
    if resume and not state.trained:
        logger.warning("--resume: %s has no checkpoint yet; starting from step 0", out)
    if is_main_process():
        write_record(out, current)
    return state
