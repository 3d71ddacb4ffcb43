"""The basics every file policy shares: :class:`PathError`, the one-line refusal of a path, and
making folders with a failure said in one line."""

from __future__ import annotations

from pathlib import Path

from diffutron_common.errors import DiffutronError

__all__ = ["PathError", "check_not_empty", "make_dirs"]


class PathError(DiffutronError):
    """An output or input path that cannot be used as asked, in one line."""


def check_not_empty(path: str | Path, option: str) -> None:
    """Refuse a path given as empty text (``--output ""``), which would name the current folder."""
    if str(path).strip() == "":
        raise PathError(f"{option} is empty; give a path")


def make_dirs(path: str | Path, *, option: str) -> Path:
    """``mkdir -p``, with a failure said in one line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PathError(f"{option} {path}: a file is in the way of this folder") from None
    except OSError as exc:
        raise PathError(f"cannot create {option} {path}: {exc.strerror or exc}") from None
    return path
