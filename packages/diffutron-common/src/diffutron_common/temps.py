"""Temporary names beside an output, and clearing what a killed process left under them.

A temporary name is hidden, carries :data:`TEMP_TAG` (or :data:`OLD_TAG` for a previous version
moved aside), a tag of this host and the writer's process id, and keeps the final name's suffix:
:func:`remove_stale_temps` can then tell a dead writer's leftovers from a live one's.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

__all__ = ["OLD_TAG", "TEMP_TAG", "fsync_tree", "is_temp", "remove_stale_temps", "temp_sibling"]

TEMP_TAG = ".diffutron-tmp-"
"""Marks an output being built."""
OLD_TAG = ".diffutron-old-"
"""Marks a previous version moved aside while its successor moves in."""
_TEMP_NAME = re.compile(
    r"^\.(?P<stem>.+)\.diffutron-(?P<kind>tmp|old)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-"
    r"[0-9a-f]{8}(?P<suffix>\.[^./]{1,10})?$"
)


def _host() -> str:
    """A short tag of this machine, so that a process on another host sharing the folder is never
    taken for a dead one here."""
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:6]


def _split(name: str) -> tuple[str, str]:
    suffix = Path(name).suffix
    if not suffix or len(suffix) > 10 or suffix == name:
        return name, ""
    return name[: -len(suffix)], suffix


def temp_sibling(final: str | Path, *, tag: str = TEMP_TAG) -> Path:
    """A fresh temporary path beside ``final``: hidden, recognisable as Diffutron's (with this
    host and process), and keeping ``final``'s suffix (writers that pick a format by suffix
    still do). ``OLD_TAG`` names a previous version moved aside while its successor moves in."""
    final = Path(os.path.abspath(final))
    stem, suffix = _split(final.name)
    token = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
    return final.parent / f".{stem}{tag}{token}{suffix}"


def is_temp(path: str | Path) -> bool:
    """Whether ``path`` is named as one of Diffutron's temporaries (:func:`temp_sibling`)."""
    return _TEMP_NAME.match(Path(path).name) is not None


def _alive(host: str, pid: int) -> bool:
    if host != _host():  # another machine's: it cannot be checked from here, so it stays
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | Path, *, name: str | None = None) -> list[Path]:
    """Clear what a killed Diffutron process left in ``folder`` (only the temporaries of
    ``name``, when given): a half-built output is removed; a previous version that was moved
    aside is put back when its successor never arrived, else removed. Temporaries of live
    processes (and of other hosts) stay. Returns the paths removed or restored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    for entry in sorted(folder.glob(".*")):
        match = _TEMP_NAME.match(entry.name)
        if match is None or _alive(match["host"], int(match["pid"])):
            continue
        final = folder / f"{match['stem']}{match['suffix'] or ''}"
        if name is not None and final.name != name:
            continue
        if match["kind"] == "old" and not final.exists() and not final.is_symlink():
            os.replace(entry, final)  # killed between moving the old aside and the new in
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        done.append(entry)
    return done


def fsync_tree(path: str | Path) -> None:
    """Flush a finished file or folder to disk (files, then folders), so that the rename that
    publishes it never points at data a power cut could lose."""
    path = Path(path)
    targets = [path] if path.is_file() else sorted(path.rglob("*"), key=lambda p: -len(p.parts))
    for target in [*targets, path] if path.is_dir() else targets:
        if target.is_symlink():
            continue
        try:
            fd = os.open(target, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems cannot sync a folder
        finally:
            os.close(fd)
