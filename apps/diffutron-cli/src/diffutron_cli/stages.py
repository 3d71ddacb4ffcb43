"""The demo's stages: each result saved as JSON, reused only when made from the same inputs, and
each training run replaced only once its successor is complete."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import click


def write_json(path: Path, data: dict) -> dict:
    from diffutron_common import write_text

    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data


def identity(result: dict) -> str:
    """A short hash of a stage's result: the stages after it are redone when it changes."""
    blob = json.dumps(result, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def read_saved(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stage(number: int, title: str, path: Path, force: bool, inputs: dict, work) -> dict:
    """Run ``work()`` (returning a JSON-able dict saved at ``path``) unless ``path`` holds the
    result of a run with the same ``inputs`` (settings, and the results of the stages it builds
    on): a stage is never reused for other settings."""
    click.secho(f"\n[{number}/5] {title}", bold=True)
    saved = read_saved(path)
    if saved is not None and not force and saved.get("inputs") == inputs:
        click.echo(f"  reusing {path} (--force to redo)")
        return saved
    if saved is not None and not force:
        click.echo(f"  {path} was made with other settings; redoing this stage")
    start = time.perf_counter()
    result = work()
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["inputs"] = inputs
    return write_json(path, result)


def train_stage(out: Path, name: str, force: bool, train) -> Path:
    """Run ``train(folder, resume)`` for the run folder ``out/name``: continued (or found
    finished) where an earlier demo left it; with ``force``, trained afresh in a folder beside
    it that replaces it only once training has succeeded."""
    from diffutron_common import PathError, replace_path, temp_sibling

    final = out / name
    if not force:
        return Path(train(final, (final / "run.json").is_file()))
    fresh = temp_sibling(final)
    try:
        train(fresh, False)
        replace_path(fresh, final, "run", option=f"the demo's {name} folder")
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    run_file = final / "run.json"  # it names the folder it was trained in
    try:
        settings = json.loads(run_file.read_text(encoding="utf-8"))
        settings["output_dir"] = str(final)
        write_json(run_file, settings)
    except (OSError, ValueError, PathError):
        pass
    return final / "model"
