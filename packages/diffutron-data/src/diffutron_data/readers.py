"""Reading sources: local files (.txt, .jsonl, .parquet), Hub datasets and the embedded corpus.

Records are streamed (never all in memory); every record that cannot be used is reported with its
origin (file and line, or dataset and row) and counted in a :class:`ReadReport`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from diffutron_common.text import file_sha256, text_problem
from diffutron_data import embedded
from diffutron_data.errors import DataError, ReadReport, load_error
from diffutron_data.lines import LINE_CAP, decoded_lines, line_cap
from diffutron_data.sources import (
    JSONL_SUFFIXES,
    TEXT_SUFFIXES,
    Source,
    check_file,
    hub_revision,
)


def describe_source(source: Source) -> dict[str, Any]:
    """What the manifest records: options, plus size and SHA-256 of the content read."""
    info = {k: v for k, v in asdict(source).items() if v is not None}
    if source.embedded:
        blob = "\n".join(embedded_texts(source.location)).encode("utf-8")
        info["bytes"] = len(blob)
        info["sha256"] = hashlib.sha256(blob).hexdigest()
    elif source.hub:
        info["resolved_revision"] = hub_revision(source)
    else:
        path = check_file(source)
        info["bytes"] = path.stat().st_size
        info["sha256"] = file_sha256(path)
    return info


EMBEDDED = ("embedded:corpus", "embedded:corpus-train", "embedded:corpus-heldout")


def embedded_texts(location: str) -> list[str]:
    if location == "embedded:corpus":
        return list(corpus_documents())
    if location == "embedded:corpus-train":
        return corpus_split()[0]
    if location == "embedded:corpus-heldout":
        return corpus_split()[1]
    raise DataError(f"unknown embedded source {location!r}; known: {', '.join(EMBEDDED)}")


@lru_cache(maxsize=1)
def corpus_documents() -> tuple[str, ...]:
    """Every embedded corpus document (a paragraph), genre files in order."""
    report = ReadReport()
    sources = [Source(str(path), mode="paragraph") for path in embedded.corpus_paths()]
    return tuple(text for source in sources for text, _ in iter_texts(source, report))


def corpus_split() -> tuple[list[str], list[str]]:
    """``(train, heldout)`` embedded documents (:func:`diffutron_data.embedded.split_heldout`)."""
    return embedded.split_heldout(corpus_documents())


def _txt_texts(path: Path, mode: str, report: ReadReport, cap: int) -> Iterator[tuple[str, str]]:
    """A text file's documents: its lines, or its paragraphs (separated by blank lines); a
    paragraph past ``cap`` characters is dropped as ``too_long`` without being held whole."""
    if mode == "line":
        for number, line in decoded_lines(path, report, cap):
            if line is None:
                continue
            if line.strip():
                yield line.strip(), f"{path}:{number}"
            else:
                report.skip("empty", f"{path}:{number}")
        return
    lines: list[str] = []
    start, size, broken = 0, 0, False
    for number, line in decoded_lines(path, report, cap):
        if line is not None and not line.strip():
            if lines and not broken:
                yield " ".join(lines), f"{path}:{start}"
            lines, size, broken = [], 0, False
            continue
        if not lines and not broken:
            start = number
        if line is None:
            broken = True  # the invalid line was reported; its paragraph is not used
        elif not broken:
            lines.append(line.strip())
            size += len(lines[-1]) + 1
            if size > cap:
                report.skip("too_long", f"{path}:{start}", f"a paragraph over {cap} characters")
                lines, broken = [], True
    if lines and not broken:
        yield " ".join(lines), f"{path}:{start}"


def _jsonl_rows(path: Path, report: ReadReport, cap: int) -> Iterator[tuple[dict, str]]:
    for number, line in decoded_lines(path, report, cap):
        if line is None:
            continue
        origin = f"{path}:{number}"
        if not line.strip():
            report.skip("empty", origin)
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            report.skip("malformed_json", origin, exc.msg)
            continue
        except RecursionError:
            report.skip("malformed_json", origin, "nested too deeply")
            continue
        if not isinstance(row, dict):
            report.skip("malformed_row", origin, f"a JSON {type(row).__name__}, not an object")
            continue
        yield row, origin


def _parquet_rows(path: Path, column: str | None) -> Iterator[tuple[dict, str]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    if column is not None and column not in names:
        raise DataError(f"{path}: no column {column!r}; columns: {', '.join(names)}")
    number = 0
    batches = parquet.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches, None)
        except Exception as exc:  # a damaged page part-way through
            raise DataError(f"{path}: damaged parquet data after row {number} ({exc})") from None
        if batch is None:
            return
        for row in batch.to_pylist():
            number += 1
            yield row, f"{path}:row {number}"


def _hub_rows(source: Source, column: str | None) -> Iterator[tuple[dict, str]]:
    import datasets

    try:
        dataset = datasets.load_dataset(
            source.location,
            source.config,
            split=source.split,
            revision=source.revision,
            streaming=True,
        )
    except Exception as exc:  # datasets raises many types; the user needs one line
        raise load_error(
            f"Hub dataset {source.location!r}",
            exc,
            offline_hint="HF_HUB_OFFLINE is set: only datasets already in the local cache load",
        ) from None
    names = dataset.column_names
    if column is not None and names is not None and column not in names:
        raise DataError(
            f"Hub dataset {source.location!r} has no column {column!r}; columns: {', '.join(names)}"
        )
    for number, row in enumerate(dataset):
        yield row, f"{source.location}:{source.split}:{number}"


def iter_rows(
    source: Source, report: ReadReport, *, column: str | None = None, cap: int = LINE_CAP
) -> Iterator[tuple[dict, str]]:
    """Stream ``(row, origin)`` from a .jsonl, .parquet or Hub source; a JSONL line longer
    than ``cap`` bytes is skipped as ``too_long``.

    ``column``, when given, must exist in a source with a schema (parquet, Hub), else
    :class:`DataError` names the columns there are.
    """
    if source.hub:
        rows = _hub_rows(source, column)
    elif source.embedded:
        raise DataError(f"{source.location} is text, not rows with fields")
    else:
        path = check_file(source)
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            raise DataError(f"{path}: a text file has no fields; use .jsonl or .parquet here")
        rows = (
            _jsonl_rows(path, report, cap)
            if suffix in JSONL_SUFFIXES
            else _parquet_rows(path, column)
        )
    for count, item in enumerate(rows):
        if source.limit is not None and count >= source.limit:
            return
        yield item


def iter_texts(
    source: Source, report: ReadReport, *, max_bytes: int | None = None
) -> Iterator[tuple[str, str]]:
    """Stream ``(text, origin)`` documents; skipped records are counted in ``report``.

    Empty or whitespace-only documents are skipped as ``empty``; a row without the text field
    as ``missing_field``; a field that is not a string as ``malformed_row``; a document over
    ``max_bytes`` UTF-8 bytes (and a line too long to hold one) as ``too_long``, never held
    whole or tokenised. If no row of a JSONL file has the field, that is an error naming the
    fields the rows do have.
    """
    for text, origin in _texts(source, report, line_cap(max_bytes)):
        if max_bytes is not None and _longer(text, max_bytes):
            report.skip("too_long", origin, f"over {max_bytes} bytes")
            continue
        report.yielded += 1
        yield text, origin


def _longer(text: str, max_bytes: int) -> bool:
    """Whether ``text`` is over ``max_bytes`` UTF-8 bytes (a character is 1 to 4 of them)."""
    if len(text) > max_bytes or 4 * len(text) <= max_bytes:
        return len(text) > max_bytes
    return len(text.encode("utf-8", "surrogatepass")) > max_bytes


def _texts(source: Source, report: ReadReport, cap: int) -> Iterator[tuple[str, str]]:
    """:func:`iter_texts` before the length check (which counts what it yields)."""
    if source.embedded or (
        not source.hub and Path(source.location).suffix.lower() in TEXT_SUFFIXES
    ):
        texts: Iterator[tuple[str, str]]
        if source.embedded:
            texts = (
                (t, f"{source.location}:{i + 1}")
                for i, t in enumerate(embedded_texts(source.location))
            )
        else:
            texts = _txt_texts(check_file(source), source.mode, report, cap)
        for count, (text, origin) in enumerate(texts):
            if source.limit is not None and count >= source.limit:
                return
            yield text, origin
        return
    seen_fields: set[str] = set()
    found = False
    for row, origin in iter_rows(source, report, column=source.column, cap=cap):
        if source.column not in row:
            seen_fields.update(row)
            report.skip("missing_field", origin, f"no field {source.column!r}")
            continue
        found = True
        value = row[source.column]
        if not isinstance(value, str):
            report.skip("malformed_row", origin, f"{source.column!r} is {type(value).__name__}")
        elif text_problem(value):
            report.skip("malformed_row", origin, f"{source.column!r} is {text_problem(value)}")
        elif not value.strip():
            report.skip("empty", origin)
        else:
            yield value.strip(), origin
    if not found and seen_fields:
        raise DataError(
            f"{source}: no row has the field {source.column!r}; fields found: "
            f"{', '.join(sorted(seen_fields))}"
        )
