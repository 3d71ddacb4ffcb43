"""Reading lines of a file with a cap (docs/training.md#records-at-the-edges): a line longer
than the cap is counted and read past in pieces, never held whole; a UTF-8 byte order mark at
the start of a file is dropped; undecodable bytes are reported with where they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from diffutron_common.text import decode_message
from diffutron_data.errors import DataError, ReadReport

LINE_CAP = 16 << 20
"""The longest line read, in bytes: a longer one is skipped as ``too_long`` (and counted)
without ever being held whole, so one huge line cannot exhaust memory."""
BYTES_PER_TOKEN = 64
"""A generous bound on the UTF-8 bytes one token covers: a document longer than ``max_length``
times this cannot fit in ``max_length`` tokens, and is dropped before it is tokenised."""
BOM = b"\xef\xbb\xbf"


def raw_lines(handle: BinaryIO, cap: int) -> Iterator[bytes | None]:
    """Each line of ``handle`` as bytes, or None for a line longer than ``cap`` bytes (read
    past in pieces of at most ``cap``, never whole); a UTF-8 byte order mark at the start of the
    file is dropped."""
    first = True
    while True:
        raw = handle.readline(cap + 1)
        if not raw:
            return
        if first and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        first = False
        if len(raw) <= cap or raw.endswith(b"\n"):
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = handle.readline(cap)
        yield None


def decoded_lines(
    path: Path, report: ReadReport, cap: int = LINE_CAP
) -> Iterator[tuple[int, str | None]]:
    """``(line number, text)``; text is None for a line that is not valid UTF-8 or is longer
    than ``cap`` bytes (reported)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(raw_lines(handle, cap), start=1):
            if raw is None:
                report.skip("too_long", f"{path}:{number}", f"a line over {cap} bytes")
                yield number, None
                continue
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = raw.rstrip(b"\r\n")
                detail = decode_message(path, number, line, exc).split(" (", 1)[1].split(")")[0]
                report.skip("invalid_utf8", f"{path}:{number}", detail)
                yield number, None


def line_cap(max_bytes: int | None) -> int:
    """The longest line read for documents of at most ``max_bytes`` bytes (None: any): room
    for JSON escapes (6 bytes a byte at worst) and a row's other fields, within
    :data:`LINE_CAP`."""
    return LINE_CAP if max_bytes is None else min(LINE_CAP, 6 * max_bytes + 4096)
