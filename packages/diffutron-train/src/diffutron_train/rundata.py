"""What a training run trains on: a folder ``prepare`` made (``--data``), or the run's own
``data/``, built from a data spec's plan (``diffutron_data.CPTPlan`` / ``SFTPlan``) and rebuilt
only when its inputs changed; and the run folder claimed for it (:func:`open_run`), the same way
for CPT and SFT."""

from __future__ import annotations

import logging
from typing import Any, cast

from diffutron_data import load_prepared, manifest_fingerprint, read_manifest
from diffutron_train.distributed import main_process_first
from diffutron_train.errors import TrainError
from diffutron_train.runs import RunState, start_run, undo_if_failed

logger = logging.getLogger(__name__)


def run_identity(settings: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
    """What ``run.json`` records of a run: every setting, and the fingerprint of its data
    (:func:`diffutron_train.runs.start_run` compares those that change the result)."""
    return {**settings, "data_fingerprint": data_fingerprint}


def data_fingerprint(data: str | None, kind: str, plan, tokenizer) -> str:
    """What identifies the data a run trains on: the prepared folder's manifest (``data``), or
    the recipe of the data the run would build (sources by content, tokenizer, settings)."""
    if data:
        read_manifest(data, kind)
        return cast(str, manifest_fingerprint(data))  # None only without a manifest
    return plan.fingerprint(tokenizer)


def data_length(data: str | None, kind: str, plan) -> int:
    """The longest row the run's data may hold (checked against the model's positions)."""
    return read_manifest(data, kind)["max_length"] if data else plan.max_length


def _training_rows(run, kind: str, plan, tokenizer, state: RunState, key: str):
    """``(rows, max_length)``: the prepared ``run.data``, or the run's own ``data/``, built (or
    rebuilt) unless it was built from exactly these inputs."""
    if run.data:
        rows, manifest = load_prepared(run.data, kind)
        return rows, manifest["max_length"]
    target = state.folder / "data"
    if manifest_fingerprint(target) != key:
        if (target / "manifest.json").is_file():
            logger.info("%s was built from other inputs; rebuilding it", target)
        plan.build(tokenizer, target, num_proc=run.num_proc, overwrite=True)
    rows, _ = load_prepared(target, kind)
    return rows, plan.max_length


def open_run(run, kind: str, plan, tokenizer, *, resume: bool, empty: str):
    """``(state, rows, max_length)`` of a CPT or SFT ``run``: its folder claimed, resumed or
    found finished (:func:`start_run`; then ``rows`` is None) and the rows it trains on, with
    ``empty`` the error when there are none. Rank 0 does this first and builds the data; the
    other ranks then reuse it. A failure before training leaves no new folder behind."""
    with main_process_first():
        key = data_fingerprint(run.data, kind, plan, tokenizer)
        state = start_run(run_identity(run.to_dict(), key), run.output_dir, resume=resume)
        if state.finished:
            return state, None, None
        with undo_if_failed(state):
            rows, max_length = _training_rows(run, kind, plan, tokenizer, state, key)
            if len(rows) == 0:
                raise TrainError(empty)
    return state, rows, max_length
