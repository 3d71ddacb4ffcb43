"""Single files written atomically: built under a temporary name beside their place, synced, and
renamed into place only when complete, so a crash leaves the previous version or nothing.

Where the user points matters more than the name they typed: a symlink is followed and the file is
built beside its target (the link stays a link); a path that exists and is not a regular file (a
character device such as ``/dev/null``, a FIFO, a socket) is written to directly, never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from diffutron_common.paths import PathError, make_dirs
from diffutron_common.temps import remove_stale_temps, temp_sibling

__all__ = ["atomic_path", "atomic_write", "is_special_file", "write_bytes", "write_text"]

_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EPIPE, errno.EFBIG, errno.EROFS}
"""What writing into an open output can fail with (``/dev/full`` gives ENOSPC)."""


def is_special_file(path: str | Path) -> bool:
    """Whether ``path`` (links followed) exists and is neither a regular file nor a folder: a
    device, a FIFO or a socket, which an output is written into rather than replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _destination(path: str | Path) -> Path:
    """The file ``path`` means: its symlinks (and those of its folders) resolved, so that the
    output lands in the link's target and the link itself is kept."""
    return Path(os.path.realpath(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_path(path: str | Path, *, option: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that takes a path (``savefig``,
    ``save_file``); it replaces ``path`` when the block succeeds and is removed otherwise. A
    ``path`` that is a device or a FIFO is yielded as it is: the writer writes into it."""
    target = _destination(path)
    if is_special_file(target):
        yield target
        return
    make_dirs(target.parent, option=option)
    remove_stale_temps(target.parent, name=target.name)  # a killed earlier write of this output
    tmp = temp_sibling(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        os.replace(tmp, target)
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
    and is left as it was when anything goes wrong. A device or FIFO is opened and written
    directly; a failed write to it (``/dev/full``) is a :class:`PathError`."""
    binary = "b" in mode
    with atomic_path(path, option=option) as tmp:
        special = is_special_file(tmp)
        try:
            if binary:
                handle = open(tmp, mode)  # noqa: SIM115
            else:
                handle = open(tmp, mode, encoding=encoding, newline=newline)  # noqa: SIM115
        except OSError as exc:
            raise PathError(f"cannot write {option} {path}: {exc.strerror or exc}") from None
        try:
            with handle:
                yield handle
                handle.flush()
                if not special:  # fsync means nothing to a device (EINVAL on /dev/null)
                    os.fsync(handle.fileno())
        except OSError as exc:
            if exc.filename is not None or exc.errno not in _WRITE_ERRORS:
                raise  # not this output's: another file's error stays that file's
            raise PathError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def write_text(path: str | Path, text: str, *, option: str = "output") -> Path:
    with atomic_write(path, option=option) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes, *, option: str = "output") -> Path:
    with atomic_write(path, "wb", option=option) as handle:
        handle.write(data)
    return Path(path)
