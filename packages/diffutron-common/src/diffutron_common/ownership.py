"""Folders Diffutron owns: a marker file (:data:`MARKER`) names their kind, and only an absent or
empty folder, or one with the marker of the expected kind, is ever claimed, replaced or removed;
a folder is built under a temporary name and renamed into place when complete
(:func:`building_folder`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from diffutron_common.atomic import write_text
from diffutron_common.paths import PathError, check_not_empty, make_dirs
from diffutron_common.temps import OLD_TAG, fsync_tree, remove_stale_temps, temp_sibling

__all__ = [
    "MARKER",
    "building_folder",
    "check_replaceable",
    "claim_folder",
    "owned",
    "read_marker",
    "remove_owned",
    "replace_path",
    "write_marker",
]

MARKER = ".diffutron.json"
"""The file that marks a folder as made by Diffutron; it holds ``{"kind": …}``."""


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a folder Diffutron made, or None (no marker, or not one of ours)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def write_marker(folder: str | Path, kind: str, **info: Any) -> None:
    write_text(Path(folder) / MARKER, json.dumps({"kind": kind, **info}, sort_keys=True) + "\n")


def owned(folder: str | Path, kinds: str | Iterable[str] | None = None) -> bool:
    """Whether ``folder`` carries Diffutron's marker (of one of ``kinds``, when given)."""
    marker = read_marker(folder)
    if marker is None:
        return False
    if kinds is None:
        return True
    wanted = {kinds} if isinstance(kinds, str) else set(kinds)
    return marker["kind"] in wanted


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _kinds(kind: str | Iterable[str]) -> tuple[str, ...]:
    return (kind,) if isinstance(kind, str) else tuple(kind)


def check_replaceable(path: str | Path, kind: str | Iterable[str], *, option: str) -> None:
    """Raise :class:`PathError` unless ``path`` is absent, an empty folder, or a folder that
    Diffutron made as ``kind``: the only things the project may replace."""
    check_not_empty(path, option)
    path = Path(path)
    kinds = _kinds(kind)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink():
        raise PathError(f"{option} {path} is a link; give the folder it points to, or a new one")
    if not path.is_dir():
        raise PathError(f"{option} {path} is a file, not a folder; give a folder path")
    if _is_empty_dir(path):
        return
    marker = read_marker(path)
    if marker is None:
        why = f"its {MARKER} is not Diffutron's" if (path / MARKER).exists() else f"no {MARKER}"
        raise PathError(
            f"{option} {path} holds files Diffutron did not make ({why}); "
            "choose a new or empty folder"
        )
    if marker["kind"] not in kinds:
        raise PathError(
            f"{option} {path} is a Diffutron {marker['kind']} folder, not a {kinds[0]} folder; "
            "choose another folder"
        )


def claim_folder(path: str | Path, kind: str | Iterable[str], *, option: str) -> Path:
    """Make ``path`` a folder of ``kind`` to write into: create and mark it when absent or empty,
    accept it when it already carries the marker of ``kind``; refuse anything else."""
    path = Path(path)
    check_replaceable(path, kind, option=option)
    make_dirs(path, option=option)
    if read_marker(path) is None:
        write_marker(path, _kinds(kind)[0])
    return path


def _refuse_working_folder(path: Path, option: str) -> None:
    """Replacing or removing the current folder (or one above it) would pull the floor from under
    the command and the user's shell."""
    here = Path.cwd().resolve()
    target = Path(os.path.abspath(path)).resolve()
    if here == target or target in here.parents:
        raise PathError(
            f"{option} {path} is the current folder or holds it; give a folder inside it"
        )


def replace_path(
    tmp: str | Path, final: str | Path, kind: str | Iterable[str], *, option: str
) -> Path:
    """Move the finished folder ``tmp`` to ``final``. An existing ``final`` must be Diffutron's
    (``kind``); it is moved aside first and removed only once ``tmp`` is in place."""
    tmp, final = Path(tmp), Path(os.path.abspath(final))
    check_replaceable(final, kind, option=option)
    if not final.exists():
        os.replace(tmp, final)
        return final
    _refuse_working_folder(final, option)
    trash = temp_sibling(final, tag=OLD_TAG)  # put back by remove_stale_temps after a kill
    os.replace(final, trash)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(trash, final)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    return final


def remove_owned(path: str | Path, kind: str | Iterable[str], *, option: str) -> None:
    """Delete a folder Diffutron made as ``kind``; refuse anything else."""
    path = Path(path)
    check_replaceable(path, kind, option=option)
    if path.exists():
        _refuse_working_folder(path, option)
        trash = temp_sibling(path)
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def building_folder(
    final: str | Path,
    kind: str | Iterable[str],
    *,
    option: str = "--output-dir",
    overwrite: bool = True,
    **marker_info: Any,
) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``final`` to build into. When the block succeeds it
    is marked as ``kind`` and replaces ``final``; when it fails it is removed and ``final`` is left
    as it was. ``final`` must be absent, empty or Diffutron's; with ``overwrite=False`` it must
    not hold anything."""
    shown = final
    final = Path(os.path.abspath(final))
    if not overwrite and final.exists() and not _is_empty_dir(final):
        raise PathError(f"{option} {shown} exists and is not empty; pass --overwrite to replace it")
    check_replaceable(shown, kind, option=option)
    if final.exists():
        _refuse_working_folder(final, option)
    make_dirs(final.parent, option=option)
    remove_stale_temps(final.parent, name=final.name)  # a killed earlier build of this output
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        write_marker(tmp, _kinds(kind)[0], **marker_info)
        fsync_tree(tmp)
        replace_path(tmp, final, kind, option=option)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
