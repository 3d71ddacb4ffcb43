"""Shared machinery of the dataset builders: checks, fingerprints, manifests, and an output that
appears only when complete.

The builders read their sources in chunks while ``num_proc`` processes tokenise them
(:mod:`diffutron_data.stream`), with a scratch folder beside the output for their own files. The
finished dataset and its ``manifest.json`` appear in the output folder by one rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from diffutron_common import PathError, building_folder, reason, temp_sibling
from diffutron_data.errors import DataError
from diffutron_data.progress import progress_enabled
from diffutron_data.sources import Source, check_file

BUILDER_VERSION = version("diffutron-data")


def start_build(tokenizer, tokenizer_name: str, num_proc: int) -> None:
    """Checks and settings every builder needs before it tokenises with ``num_proc`` workers."""
    import datasets

    if num_proc < 1:
        raise DataError(f"num_proc must be >= 1, got {num_proc}")
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"tokenizer {tokenizer_name!r} is not a fast (Rust) tokenizer")
    if num_proc > 1:  # forked workers must not share the Rust tokenizer's thread pool
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not progress_enabled():
        datasets.disable_progress_bars()


def histogram(lengths: Iterable[int], max_length: int) -> list[dict[str, int | str]]:
    """Counts of lengths in ``(0, 1], (1, 2], (2, 4], … (…, max_length]`` and ``> max_length``."""
    import numpy as np

    values = np.fromiter(lengths, dtype=np.int64)
    edges = [0]
    while edges[-1] < max_length:
        edges.append(min(max(1, edges[-1] * 2), max_length))
    counts = np.histogram(values, bins=[e + 0.5 for e in edges] + [np.inf])[0]  # (lo, hi]
    bins: list[dict[str, int | str]] = [
        {"from": lo + 1, "to": hi, "count": int(n)}
        for lo, hi, n in zip(edges, edges[1:], counts, strict=False)
    ]
    bins.append({"from": max_length + 1, "to": "inf", "count": int(counts[-1])})
    return bins


def recipe_fingerprint(recipe: dict[str, Any]) -> str:
    """The fingerprint that identifies data made from ``recipe``. A Hub source counts by its name
    and options, not by the commit it resolved to when the recipe was made: the same run then
    resumes on- or offline, always on the data it built (the manifest still records the commit)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "resolved_revision"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return fingerprint(strip(recipe))


def fingerprint(payload: Any) -> str:
    """A stable short hash of a JSON-able payload (used as the dataset fingerprint)."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


@contextmanager
def atomic_output(
    output_dir: str | Path, *, kind: str, overwrite: bool
) -> Iterator[tuple[Path, Path]]:
    """Yield ``(work, final)``: build the dataset into ``final``, a temporary folder that replaces
    ``output_dir`` only on success (marked as Diffutron's ``kind``); ``work`` is a scratch folder
    for intermediate files, removed at the end either way. ``output_dir`` must be absent, empty,
    or a folder of ``kind`` (with ``overwrite``): a user's folder is never replaced."""
    out = Path(output_dir)
    try:
        with building_folder(out, kind, option="--output-dir", overwrite=overwrite) as final:
            work = temp_sibling(out.parent / f"{out.name}-work")
            work.mkdir()
            try:
                yield work, final
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except PathError as exc:
        raise DataError(str(exc)) from None


def recipe_header(kind: str, tokenizer, tokenizer_name: str, max_length: int) -> dict[str, Any]:
    """What every recipe starts with: the kind of data, this builder and its version, the
    tokenizer by name and by content, and the length limit."""
    return {
        "kind": kind,
        "builder": "diffutron-data",
        "builder_version": BUILDER_VERSION,
        "tokenizer": tokenizer_name,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "max_length": max_length,
    }


def tokenizer_sha256(tokenizer) -> str:
    """A hash of the tokenizer's whole definition (vocabulary, merges, special tokens), so data
    built with another tokenizer of the same name is never taken for this one's."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_fingerprint(folder: str | Path) -> str | None:
    """What identifies prepared data: the recipe fingerprint its manifest records (or, for data
    built by an older version, the manifest's own hash); None without a manifest."""
    path = Path(folder) / "manifest.json"
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    if isinstance(manifest, dict) and isinstance(manifest.get("fingerprint"), str):
        return manifest["fingerprint"]
    return hashlib.sha256(raw).hexdigest()[:16]


def read_manifest(folder: str | Path, kind: str) -> dict[str, Any]:
    """The manifest of a prepared ``kind`` (``cpt`` or ``sft``) data folder, or one
    :class:`DataError` saying why the folder is not that."""
    path = Path(folder) / "manifest.json"
    what = "corpus" if kind == "cpt" else "SFT data"
    if not path.is_file():
        raise DataError(f"{folder} is not prepared {what} (no manifest.json); see 'prepare {kind}'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(f"{path} is damaged; prepare the data again ('prepare {kind}')") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != kind:
        found = manifest.get("kind") if isinstance(manifest, dict) else None
        raise DataError(
            f"{folder} is not prepared {what} (its manifest says {found!r}); see 'prepare {kind}'"
        )
    if not isinstance(manifest.get("max_length"), int):
        raise DataError(f"{path} has no max_length; prepare the data again ('prepare {kind}')")
    return manifest


def load_prepared(folder: str | Path, kind: str):
    """``(dataset, manifest)`` of a prepared data folder, each failure one :class:`DataError`."""
    import datasets

    manifest = read_manifest(folder, kind)
    try:
        dataset = datasets.load_from_disk(str(folder))
    except Exception as exc:  # a damaged Arrow file or state.json: one line
        raise DataError(
            f"cannot load the prepared data in {folder} ({reason(exc)}); "
            f"prepare it again ('prepare {kind}')"
        ) from None
    return dataset, manifest


def data_argument(data: str | None, kind: str) -> tuple[str | None, list[str]]:
    """What a ``--data`` value is: ``(prepared folder, [])`` for a folder made by ``prepare
    {kind}``, ``(None, [source])`` for a file (``.txt``, ``.jsonl``, ``.parquet``) or a Hub
    dataset (``hub:ID`` or ``owner/name``), so that the run prepares it itself. Anything else is
    one :class:`DataError` saying what was expected."""
    if data is None:
        return None, []
    expected = (
        f"give a folder made by 'prepare {kind}', a .txt/.jsonl/.parquet file, or a Hub "
        "dataset (hub:ID)"
    )
    path = Path(data)
    if data.startswith("hub:"):
        return None, [data]
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return data, []
        raise DataError(f"--data {data} is a folder without manifest.json; {expected}")
    if path.is_file():
        check_file(Source(data))  # a supported kind of file, or one line saying so
        return None, [data]
    if data.count("/") == 1 and not path.suffix and not data.startswith((".", "/")):
        return None, [f"hub:{data}"]
    raise DataError(f"--data {data} does not exist; {expected}")
