"""The basics every file policy shares: :class:`PathError`, the one-line refusal of a path, and
making folders with a failure said in one line."""

from __future__ import annotations

import os
import re
from pathlib import Path

from diffutron_common.errors import DiffutronError

__all__ = ["PathError", "check_model_source", "check_not_empty", "looks_like_path", "make_dirs"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
"""What the Hub accepts as a repository id: ``name`` or ``owner/name``."""


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


def looks_like_path(name: str | Path) -> bool:
    """Whether ``name`` can only mean a folder on disk, never a Hub id (``owner/name``): absolute,
    relative to ``.``, ``..`` or ``~``, deeper than one slash, or with characters no id has."""
    text = str(name)
    if os.path.isabs(text) or text.startswith(("./", "../", "~", ".")) or "\\" in text:
        return True
    return ".." in text or _HUB_ID.match(text) is None


def check_model_source(name: str | Path, *, what: str = "model") -> None:
    """Refuse, in one line naming it, a model that is written as a folder but is not there (the
    Hub would only answer that the text is not a repository id)."""
    if looks_like_path(name) and not Path(os.path.expanduser(str(name))).exists():
        raise PathError(
            f"cannot load {what} {str(name)!r}: no such folder; give an existing model folder "
            "or a Hub id (owner/name)"
        )
