"""Inputs are never outputs: checks, before any work starts, that an output file or folder is not
also an input, not a folder where a file is meant, and in a place that can be written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from diffutron_common.atomic import is_special_file
from diffutron_common.ownership import check_replaceable
from diffutron_common.paths import PathError, check_not_empty

__all__ = ["check_output_file", "check_output_folder", "same_file"]


def check_output_file(
    path: str | Path, *, option: str = "--output", inputs: Iterable[str | Path] = ()
) -> Path:
    """Check, before any work, that ``path`` can receive a file: not a folder, not one of
    ``inputs`` nor inside an input that is a folder (a model directory), and inside a folder that
    exists (or can be made) and can be written."""
    check_not_empty(path, option)
    path = Path(path)
    if path.is_dir():
        raise PathError(f"{option} {path} is a folder; give a file path")
    for source in inputs:
        if source is None or str(source) == "":
            continue
        if same_file(path, source):
            raise PathError(
                f"{option} {path} is also an input ({source}); write the output to another file"
            )
        if Path(source).is_dir() and _inside(path, Path(source)):
            raise PathError(
                f"{option} {path} is inside an input folder ({source}); write the output elsewhere"
            )
    if is_special_file(path):  # a device or a FIFO is written into, never replaced
        if not os.access(path, os.W_OK):
            raise PathError(f"{option} {path} is not writable")
        return path
    base = _nearest_existing(Path(os.path.realpath(os.path.abspath(path))).parent)
    if not base.is_dir():
        raise PathError(f"{option} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PathError(f"{option} {path}: {base} is not writable")
    return path


def check_output_folder(
    path: str | Path,
    kind: str | Iterable[str],
    *,
    option: str = "--output-dir",
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Check, before any work, that ``path`` may receive a ``kind`` folder's files: absent, empty
    or Diffutron's ``kind``; not holding an input; in a writable place."""
    path = Path(path)
    check_replaceable(path, kind, option=option)
    for source in inputs:
        if source is not None and str(source) != "" and _inside(Path(source), path):
            raise PathError(f"{option} {path} holds an input ({source}); choose another folder")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise PathError(f"{option} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PathError(f"{option} {path}: {base} is not writable")
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (links and relative spellings included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)).resolve() == Path(os.path.abspath(b)).resolve()


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _inside(child: Path, parent: Path) -> bool:
    try:
        Path(os.path.abspath(child)).resolve().relative_to(Path(os.path.abspath(parent)).resolve())
    except ValueError:
        return False
    return True
