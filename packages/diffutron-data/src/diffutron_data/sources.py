"""Where text comes from: local files (.txt, .jsonl, .parquet) or Hugging Face Hub datasets.

A source is written as one string, e.g. ``data/news.jsonl?column=body``,
``notes.txt?mode=paragraph`` or ``hub:wikimedia/wikipedia?config=20231101.tr&split=train``.
This module says what a source is; :mod:`diffutron_data.readers` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from diffutron_data.errors import DataError

TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
_OPTIONS = {"config", "split", "column", "revision", "mode", "limit"}


@dataclass(frozen=True)
class Source:
    """One input: a local file or a Hub dataset, with how to read it."""

    location: str
    hub: bool = False
    config: str | None = None
    split: str = "train"
    column: str = "text"
    revision: str | None = None
    mode: Literal["line", "paragraph"] = "line"
    limit: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Source:
        """Parse ``[hub:]LOCATION[?key=value&…]`` with keys config, split, column, revision,
        mode (``line`` or ``paragraph``, for .txt) and limit (read at most this many records)."""
        hub = spec.startswith("hub:")
        if not hub and "?" in spec and Path(spec).is_file():
            return cls(spec)  # a file whose name holds a '?' is that file, without options
        body = spec[4:] if hub else spec
        location, _, query = body.partition("?")
        if not location:
            raise DataError(f"source {spec!r} names no file or dataset")
        pairs = parse_qsl(query, keep_blank_values=True)
        options = dict(pairs)
        repeated = sorted({key for key, _ in pairs if [k for k, _ in pairs].count(key) > 1})
        if repeated:
            raise DataError(f"source {spec!r}: option(s) {', '.join(repeated)} given twice")
        unknown = set(options) - _OPTIONS
        if unknown:
            raise DataError(
                f"source {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        suffix = Path(location).suffix.lower()
        if hub:
            kind, allowed = "a Hub dataset", {"config", "split", "column", "revision", "limit"}
        elif location.startswith("embedded:"):
            kind, allowed = "embedded data", {"limit"}
        elif suffix in TEXT_SUFFIXES:
            kind, allowed = "a text file", {"mode", "limit"}
        else:
            kind, allowed = "a table file", {"column", "limit"}
        misplaced = sorted(set(options) - allowed)
        if misplaced:
            raise DataError(
                f"source {spec!r}: {', '.join(misplaced)} does not apply to {kind} "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
        if options.get("mode", "line") not in ("line", "paragraph"):
            raise DataError(f"source {spec!r}: mode must be 'line' or 'paragraph'")
        limit = options.pop("limit", None)
        if limit is not None and not (limit.isdigit() and int(limit) > 0):
            raise DataError(f"source {spec!r}: limit must be a positive whole number")
        checked: dict[str, Any] = options  # names and mode checked above; the rest are text
        return cls(location, hub=hub, limit=int(limit) if limit else None, **checked)

    @property
    def embedded(self) -> bool:
        """``embedded:NAME`` names data shipped in this package
        (:data:`diffutron_data.readers.EMBEDDED`)."""
        return not self.hub and self.location.startswith("embedded:")

    def __str__(self) -> str:
        return f"hub:{self.location}" if self.hub else self.location


def hub_revision(source: Source) -> str | None:
    """The commit a Hub dataset's revision points to now, or None when it cannot be asked
    (offline, or the dataset is unreachable; loading it then fails with its own message)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source.location, revision=source.revision, timeout=10).sha
    except Exception:  # offline mode, network or permission errors: the manifest says None
        return None


def check_file(source: Source) -> Path:
    path = Path(source.location)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the data files themselves")
    if path.exists() and not path.is_file():
        raise DataError(f"{path} is not a regular file (a device or a pipe); save the data first")
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if path.suffix.lower() not in TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; use .txt, .jsonl or .parquet"
        )
    return path


def check_distinct(sources: list[Source]) -> None:
    """Refuse a source given twice (the same file, by its resolved path, or the same Hub
    dataset, read the same way): its records would silently count twice."""
    seen: dict[tuple[object, ...], Source] = {}
    for source in sources:
        place = source.location
        if not source.hub and not source.embedded:
            place = str(Path(source.location).resolve())
        read = (source.config, source.split, source.column, source.mode, source.revision)
        key = (source.hub, place, *read)
        if key in seen:
            first = seen[key]
            also = "" if str(first) == str(source) else f" (as {first})"
            raise DataError(
                f"source {source} is given twice{also}; give each source once, or its records "
                "count twice"
            )
        seen[key] = source
