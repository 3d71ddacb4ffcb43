"""Single files written atomically: built under a temporary name beside their place, synced, and
renamed into place only when complete, so a crash leaves the previous version or nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from diffutron_common.paths import PathError, make_dirs
from diffutron_common.temps import remove_stale_temps, temp_sibling

__all__ = ["atomic_path", "atomic_write", "write_bytes", "write_text"]


@contextlib.contextmanager
def atomic_path(path: str | Path, *, option: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that takes a path (``savefig``,
    ``save_file``); it replaces ``path`` when the block succeeds and is removed otherwise."""
    path = Path(os.path.abspath(path))
    make_dirs(path.parent, option=option)
    remove_stale_temps(path.parent, name=path.name)  # a killed earlier write of this output
    tmp = temp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | Path,
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    option: str = "output",
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` on a temporary file beside ``path``, flushed, synced and renamed over
    ``path`` when the block succeeds, removed when it fails: ``path`` is never seen half-written,
    and is left as it was when anything goes wrong."""
    binary = "b" in mode
    with atomic_path(path, option=option) as tmp:
        try:
            if binary:
                handle = open(tmp, mode)  # noqa: SIM115
            else:
                handle = open(tmp, mode, encoding=encoding, newline=newline)  # noqa: SIM115
        except OSError as exc:
            raise PathError(f"cannot write {option} {path}: {exc.strerror or exc}") from None
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: str | Path, text: str, *, option: str = "output") -> Path:
    with atomic_write(path, option=option) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes, *, option: str = "output") -> Path:
    with atomic_write(path, "wb", option=option) as handle:
        handle.write(data)
    return Path(path)
