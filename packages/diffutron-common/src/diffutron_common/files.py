"""How every Diffutron command writes files: never over what it did not make, never half-written.

* **Ownership.** A folder the project makes (a run, a prepared corpus, an exported model, a demo,
  a benchmark's results) carries a marker file, :data:`MARKER`, naming its kind. Only a folder with
  the marker of the expected kind (or an empty one) is ever replaced or written into; anything
  else is refused in one line naming the folder.
* **Atomic outputs.** Every file or folder is built under a temporary name beside its final place
  and renamed into place only when complete (:func:`atomic_write`, :func:`atomic_path`,
  :func:`building_folder`), so a crash leaves the previous version or nothing, never a half.
  Temporary names carry :data:`TEMP_TAG` and the writer's process id, so a later run can clear
  the leftovers of a killed one (:func:`remove_stale_temps`).
* **Inputs are never outputs.** :func:`check_output_file` refuses an output that is also an
  input, a folder, or a place that cannot be written, before any work starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from diffutron_common.errors import DiffutronError

MARKER = ".diffutron.json"
"""The file that marks a folder as made by Diffutron; it holds ``{"kind": …}``."""
TEMP_TAG = ".diffutron-tmp-"
OLD_TAG = ".diffutron-old-"
_TEMP_NAME = re.compile(
    r"^\.(?P<stem>.+)\.diffutron-(?P<kind>tmp|old)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-"
    r"[0-9a-f]{8}(?P<suffix>\.[^./]{1,10})?$"
)


class PathError(DiffutronError):
    """An output or input path that cannot be used as asked, in one line."""


# -- temporary names ------------------------------------------------------------------------------


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


def _refuse_working_folder(path: Path, option: str) -> None:
    """Replacing or removing the current folder (or one above it) would pull the floor from under
    the command and the user's shell."""
    here = Path.cwd().resolve()
    target = Path(os.path.abspath(path)).resolve()
    if here == target or target in here.parents:
        raise PathError(
            f"{option} {path} is the current folder or holds it; give a folder inside it"
        )


# -- ownership ------------------------------------------------------------------------------------


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
    _check_not_empty(path, option)
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


def make_dirs(path: str | Path, *, option: str) -> Path:
    """``mkdir -p``, with a failure said in one line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PathError(f"{option} {path}: a file is in the way of this folder") from None
    except NotADirectoryError:
        raise PathError(f"{option} {path}: a file is in the way of this folder") from None
    except OSError as exc:
        raise PathError(f"cannot create {option} {path}: {exc.strerror or exc}") from None
    return path


def replace_path(tmp: str | Path, final: str | Path, kind: str | Iterable[str], *, option: str):
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


# -- single files ---------------------------------------------------------------------------------


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


def check_output_file(
    path: str | Path, *, option: str = "--output", inputs: Iterable[str | Path] = ()
) -> Path:
    """Check, before any work, that ``path`` can receive a file: not a folder, not one of
    ``inputs`` nor inside an input that is a folder (a model directory), and inside a folder that
    exists (or can be made) and can be written."""
    _check_not_empty(path, option)
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
    base = _nearest_existing(path.parent)
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


def _check_not_empty(path: str | Path, option: str) -> None:
    if str(path).strip() == "":
        raise PathError(f"{option} is empty; give a path")


def _inside(child: Path, parent: Path) -> bool:
    try:
        Path(os.path.abspath(child)).resolve().relative_to(Path(os.path.abspath(parent)).resolve())
    except ValueError:
        return False
    return True
