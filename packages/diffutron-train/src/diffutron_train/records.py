"""``run.json``: what a run was started with, and how two such records differ.

A run's resolved settings (JSON-able, with the fingerprint of its training data) are recorded in
``OUTPUT_DIR/run.json``. Two records are compared setting by setting (:func:`differences`):
:data:`IGNORED_KEYS` never count, and :data:`LENGTH_KEYS` are those a resumed run may change.
:func:`run_id` names the settings that count, for the exported model to carry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from diffutron_common import DiffutronError, read_text, write_text
from diffutron_train.errors import TrainError

RUN_FILE = "run.json"
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
    """A short hash of the :func:`significant` settings: equal for runs that compute the same."""
    blob = json.dumps(significant(settings), sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings whose values differ between two JSON-like values."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out += differences(saved.get(key), current.get(key), name)
        return out
    return [] if saved == current else [prefix or "settings"]


def read_record(folder: Path) -> Any:
    """The settings recorded in ``folder``'s ``run.json``; a damaged record is a
    :class:`TrainError`."""
    path = folder / RUN_FILE
    try:
        return json.loads(read_text(path))
    except (DiffutronError, ValueError):
        raise TrainError(
            f"{path} is damaged; the run's settings are unknown: choose another --output-dir"
        ) from None


def write_record(folder: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` in ``folder``'s ``run.json`` (atomically)."""
    write_text(folder / RUN_FILE, json.dumps(settings, indent=2) + "\n")
