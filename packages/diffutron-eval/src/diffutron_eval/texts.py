"""Texts to measure perplexity on: local files (.txt, .jsonl, .json, .csv, .parquet) or a Hub
dataset, read whole and checked, so a bad source is one line naming the problem."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from diffutron_common import DiffutronError, read_text, reason, text_problem
from diffutron_eval.errors import EvalError

logger = logging.getLogger(__name__)
BILKENT_WRITINGS = "selimfirat/bilkent-turkish-writings-dataset"
"""The paper's perplexity data (Yilmaz 2025; Zenodo DOI 10.5281/zenodo.15498155). The Hub id is the
one the dataset's GitHub README links to; it was not reachable from here to check its columns."""


SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


def read_file_text(path: Path) -> str:
    """A data file's whole text: UTF-8, or one :class:`EvalError` naming the line and byte."""
    try:
        return read_text(path, what="data file")
    except DiffutronError as exc:
        raise EvalError(str(exc)) from None


def csv_rows(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    """``(header, rows)`` of a CSV file (UTF-8) whose fields are separated by ``delimiter``,
    each failure one :class:`EvalError`."""
    text = read_file_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[dict[str, str]] = []
    try:
        for row in reader:
            rows.append(row)
        return list(reader.fieldnames or []), rows
    except csv.Error as exc:
        raise EvalError(
            f"{path}: not valid CSV after {len(rows)} row(s) ({exc}); check its quotes"
        ) from None


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of a JSON Lines file; anything but a JSON
    object (or text that is not UTF-8) is an error naming the line."""
    for number, line in enumerate(read_file_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{number}: not a JSON object")
        yield number, row


def _file_texts(path: Path, column: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_file_text(path).splitlines()
    if suffix in (".jsonl", ".json"):
        rows = []
        for number, row in jsonl_objects(path):
            if column not in row:
                raise EvalError(f"{path}:{number}: no column {column!r} (found: {', '.join(row)})")
            value = row[column]
            if value is not None and not isinstance(value, str):
                kind = type(value).__name__
                raise EvalError(f"{path}:{number}: {column!r} is {kind}, not text")
            rows.append(value or "")
        return rows
    if suffix == ".csv":
        header, found_rows = csv_rows(path)
        if column not in header:
            raise EvalError(f"{path}: no column {column!r} (found: {', '.join(header)})")
        return [row.get(column) or "" for row in found_rows]
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise EvalError(f"{path}: not a readable parquet file ({reason(exc)})") from None
        if column not in table.column_names:
            found = ", ".join(table.column_names)
            raise EvalError(f"{path}: no column {column!r} (found: {found})")
        if table.schema.field(column).type not in (pa.string(), pa.large_string(), pa.null()):
            kind = table.schema.field(column).type
            raise EvalError(f"{path}: column {column!r} holds {kind}, not text")
        return [v or "" for v in table.column(column).to_pylist()]
    raise EvalError(f"{path}: unsupported file type {suffix!r} (use .txt, .jsonl, .csv, .parquet)")


def _hub_texts(name: str, column: str, split: str, config: str | None) -> list[str]:
    import datasets

    try:
        data = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown id, unknown split: one line
        raise EvalError(
            f"cannot load Hub dataset {name!r} (split {split!r}): {reason(exc)}"
        ) from None
    if column not in data.column_names:
        found = ", ".join(data.column_names)
        raise EvalError(f"Hub dataset {name!r} has no column {column!r} (found: {found})")
    return [str(v) if v is not None else "" for v in data[column]]


def read_texts(
    sources: Iterable[str],
    *,
    column: str = "text",
    split: str = "test",
    config: str | None = None,
) -> list[str]:
    """Non-empty texts of every source in order. A source is a file (``.txt``: a text a line;
    ``.jsonl``/``.csv``/``.parquet``: ``column``), or a Hub dataset id (``owner/name``, or
    ``hub:name``) read with ``split`` and ``config``. Empty texts are skipped; a source without
    any text is an error."""
    texts: list[str] = []
    for source in sources:
        path = Path(source)
        if source.startswith("hub:"):
            found = _hub_texts(source[4:], column, split, config)
        elif path.is_file():
            found = _file_texts(path, column)
        elif path.is_dir():
            raise EvalError(f"{source} is a folder; give the data files themselves")
        elif path.exists():
            raise EvalError(f"{source} is not a regular file (a device or a pipe); save it first")
        elif path.suffix.lower() in SUFFIXES or "/" not in source:
            raise EvalError(f"data file {source} does not exist")
        else:
            found = _hub_texts(source, column, split, config)
        for number, text in enumerate(found, 1):
            if text_problem(text):
                raise EvalError(f"{source}: text {number} is {text_problem(text)}")
        kept = [t for t in found if t.strip()]
        if not kept:
            raise EvalError(f"{source}: no text to evaluate (empty, or every {column!r} blank)")
        if len(kept) < len(found):  # said, never silent: blank lines, empty or null values
            logger.warning("%s: %d empty text(s) skipped", source, len(found) - len(kept))
        texts += kept
    if not texts:
        raise EvalError("no data given")
    return texts
