"""Reading a user's text files strictly: UTF-8 or a one-line error naming the file and line.

Every reader of user files goes through :func:`read_bytes` (a missing, unreadable or folder path
is one line), :func:`read_text` (the whole file, or the line and column of the first byte that is
not UTF-8) or :func:`iter_lines` (line by line; each undecodable line either stops the read with
that error, or is handed to ``on_error`` so that a reader that skips bad records can report it).
A UTF-8 byte order mark at the start is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

from diffutron_common.errors import DiffutronError

BOM = "\ufeff"


class DecodeError(DiffutronError):
    """A file that is not valid UTF-8, with its file and line."""


class ReadError(DiffutronError):
    """A file that cannot be read at all (missing, a folder, no permission)."""


def read_error(path: str | Path, exc: OSError, *, what: str = "file") -> ReadError:
    """The one-line :class:`ReadError` for a file that could not be opened."""
    if isinstance(exc, FileNotFoundError):
        return ReadError(f"{what} {path} does not exist")
    if isinstance(exc, IsADirectoryError):
        return ReadError(f"{what} {path} is a folder, not a file")
    if isinstance(exc, PermissionError):
        return ReadError(f"cannot read {what} {path}: permission denied")
    return ReadError(f"cannot read {what} {path}: {exc.strerror or exc}")


def read_bytes(path: str | Path, *, what: str = "file") -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise read_error(path, exc, what=what) from None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (checkpoints, data sources)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def decode_message(path: str | Path, line: int, raw: bytes, exc: UnicodeDecodeError) -> str:
    """``path:line: not valid UTF-8 (byte 0xNN at column C); …`` for a line's decode error."""
    column = exc.start + 1
    byte = raw[exc.start] if exc.start < len(raw) else 0
    return (
        f"{path}:{line}: not valid UTF-8 (byte 0x{byte:02x} at column {column}); "
        "save the file as UTF-8"
    )


def read_text(path: str | Path, *, what: str = "file") -> str:
    """The whole file as text; a decode error names the line and column of the first bad byte."""
    data = read_bytes(path, what=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data.count(b"\n", 0, exc.start) + 1
        raw = data[start : end if end >= 0 else len(data)]
        at = exc.start - start
        local = UnicodeDecodeError(exc.encoding, raw, at, exc.end - start, exc.reason)
        raise DecodeError(decode_message(path, line, raw, local)) from None
    return text.removeprefix(BOM)


def iter_lines(
    path: str | Path,
    *,
    what: str = "file",
    on_error: Callable[[int, str], None] | None = None,
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line, without its line break. A line that is not UTF-8
    raises :class:`DecodeError`, or, with ``on_error``, is passed to ``on_error(number,
    message)`` and skipped."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise read_error(path, exc, what=what) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                message = decode_message(path, number, raw, exc)
                if on_error is None:
                    raise DecodeError(message) from None
                on_error(number, message)
                continue
            yield number, (text.removeprefix(BOM) if number == 1 else text)


def text_problem(value: str) -> str | None:
    """Why ``value`` is not text that can be tokenised (a byte that was not UTF-8 on the command
    line or in a terminal, a lone surrogate from a JSON escape), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = value[exc.start]
        if "\udc80" <= char <= "\udcff":  # an undecodable byte, kept by surrogateescape
            return f"not valid UTF-8 (byte 0x{ord(char) - 0xDC00:02x} at character {exc.start + 1})"
        return f"not text (a lone surrogate U+{ord(char):04X} at character {exc.start + 1})"
    return None


def check_text(value: str, what: str, *, error: type[Exception] = DecodeError) -> str:
    """``value`` when it is valid text; else ``error`` naming ``what`` and the bad character."""
    problem = text_problem(value)
    if problem is not None:
        raise error(f"{what} is {problem}")
    return value
