"""Texts to measure perplexity on: local files (.txt, .jsonl, .json, .csv, .parquet) or a Hub
dataset, read whole and checked, so a bad source is one line naming the problem."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from diffutron_eval.errors import EvalError

BILKENT_WRITINGS = "selimfirat/bilkent-turkish-writings-dataset"
"""The paper's perplexity data (Yilmaz 2025; Zenodo DOI 10.5281/zenodo.15498155). The Hub id is the
one the dataset's GitHub README links to; it was not reachable from here to check its columns."""


SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of a JSON Lines file; anything but a JSON
    object is an error naming the line."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{number}: not a JSON object")
        yield number, row


def _file_texts(path: Path, column: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [line for line in path.read_text(encoding="utf-8").splitlines()]
    if suffix in (".jsonl", ".json"):
        rows = []
        for number, row in jsonl_objects(path):
            if column not in row:
                raise EvalError(f"{path}:{number}: no column {column!r} (found: {', '.join(row)})")
            rows.append(str(row[column]))
        return rows
    if suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or []):
                found = ", ".join(reader.fieldnames or [])
                raise EvalError(f"{path}: no column {column!r} (found: {found})")
            return [row[column] or "" for row in reader]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if column not in table.column_names:
            found = ", ".join(table.column_names)
            raise EvalError(f"{path}: no column {column!r} (found: {found})")
        return [str(v) if v is not None else "" for v in table.column(column).to_pylist()]
    raise EvalError(f"{path}: unsupported file type {suffix!r} (use .txt, .jsonl, .csv, .parquet)")


def _hub_texts(name: str, column: str, split: str, config: str | None) -> list[str]:
    import datasets

    try:
        data = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown id, unknown split: one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvalError(f"cannot load Hub dataset {name!r} (split {split!r}): {reason}") from None
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
        elif path.suffix.lower() in SUFFIXES or "/" not in source:
            raise EvalError(f"data file {source} does not exist")
        else:
            found = _hub_texts(source, column, split, config)
        kept = [t for t in found if t.strip()]
        if not kept:
            raise EvalError(f"{source}: no text to evaluate (empty, or every {column!r} blank)")
        texts += kept
    if not texts:
        raise EvalError("no data given")
    return texts
