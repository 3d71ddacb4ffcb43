"""The continual pre-training corpus builder (the paper's §4.1 recipe, reproducible).

Per pool of sources: read documents as the base tokenizer tokenises them (``num_proc``
processes), drop every document longer than ``max_length`` tokens (filter, never truncate),
optionally sample ``sample_size`` documents after a seeded shuffle. Then shuffle the union with the
seed and save it as a ``datasets`` folder beside a ``manifest.json``, in memory that does not grow
with the corpus (:mod:`diffutron_data.stream`). The same inputs, seed and tokenizer give the same
files, byte for byte, whatever ``num_proc``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffutron_common import check_number, write_text
from diffutron_data import packing, stream
from diffutron_data.build import (
    atomic_output,
    fingerprint,
    histogram,
    recipe_fingerprint,
    recipe_header,
    start_build,
)
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.lines import BYTES_PER_TOKEN
from diffutron_data.packing import PLAN, pack_lengths, padding_fraction, write_plan
from diffutron_data.progress import progress
from diffutron_data.readers import describe_source, iter_texts
from diffutron_data.sources import Source, check_distinct

logger = logging.getLogger(__name__)


@dataclass
class Pool:
    """Sources read together; ``sample_size`` documents are kept after filtering (all if None)."""

    name: str
    sources: list[Source]
    sample_size: int | None = None


@dataclass
class CorpusStats:
    """Counts of one pool: every document read is kept, sampled out, or dropped for a reason."""

    read: int = 0
    tokenised: int = 0
    kept: int = 0
    selected: int = 0
    dropped: Counter = field(default_factory=Counter)


def _documents(pool: Pool, report: ReadReport, max_length: int) -> Iterator[Any]:
    """The pool's documents, in chunks of ``(texts, origins)``; one longer in bytes than
    ``max_length`` tokens could hold is dropped as ``too_long`` before it is tokenised (or held
    whole)."""
    texts: list[str] = []
    origins: list[str] = []
    for source in pool.sources:
        before = report.mark()
        found = iter_texts(source, report, max_bytes=max_length * BYTES_PER_TOKEN)
        for text, origin in progress(found, desc=f"reading {source}"):
            texts.append(text)
            origins.append(origin)
            if len(texts) == stream.CHUNK:
                yield texts, origins
                texts, origins = [], []
        report.check_yielded(source, before)
    if texts:
        yield texts, origins


def cpt_recipe(
    pools: list[Pool], tokenizer, *, tokenizer_name: str, max_length: int = 512, seed: int = 0
) -> dict[str, Any]:
    """Everything the corpus is made from: the builder, the tokenizer (by content), the settings
    and each source with the SHA-256 of its content. Data whose manifest has the same
    :func:`~diffutron_data.build.recipe_fingerprint` of this was built from the same inputs."""
    check_number("max_length", max_length, minimum=1, integer=True, error=DataError)
    check_number("seed", seed, minimum=0, integer=True, error=DataError)
    if not pools or not all(p.sources for p in pools):
        raise DataError("every pool needs at least one source")
    check_distinct([source for pool in pools for source in pool.sources])
    return {
        **recipe_header("cpt", tokenizer, tokenizer_name, max_length),
        "tokenizer_vocab_size": len(tokenizer),
        "seed": seed,
        "pools": [
            {
                "name": p.name,
                "sample_size": p.sample_size,
                "sources": [describe_source(s) for s in p.sources],
            }
            for p in pools
        ],
    }


def _build_pool(pool: Pool, index, report, work: Path, tokenizer, max_length, seed, num_proc):
    """``(kept file, kept lengths, selected, stats, token lengths)`` of one pool: read,
    tokenised and filtered to ``max_length`` into a file of its kept documents, and the kept
    indices sampled to ``pool.sample_size`` (in sample order), as ``datasets``' ``shuffle(seed)``
    then ``select`` would take them."""
    kept_path = work / f"pool-{index}-kept.arrow"
    logger.info("reading and tokenising %s", pool.name)
    documents = _documents(pool, report, max_length)
    lengths = stream.tokenise(documents, kept_path, tokenizer, max_length, num_proc)
    inside = lengths <= max_length
    kept = int(inside.sum())
    stats = CorpusStats(read=report.read, tokenised=len(lengths), kept=kept)
    stats.dropped.update(report.skipped)
    stats.dropped["too_long"] += len(lengths) - kept  # and those too long to tokenise
    selected = np.arange(kept)
    if pool.sample_size is not None and pool.sample_size < kept:
        selected = stream.permutation(kept, seed)[: pool.sample_size]
    elif pool.sample_size is not None:
        logger.warning(
            "pool %s: asked for %d documents, only %d pass the filter; keeping all",
            pool.name,
            pool.sample_size,
            kept,
        )
    stats.selected = len(selected)
    return kept_path, lengths[inside], selected, stats, lengths


def _in_order(kept_lengths: list, places: list) -> np.ndarray:
    """The corpus's lengths in its order, from each pool's kept lengths and their places."""
    out = np.zeros(sum(int((p >= 0).sum()) for p in places), np.int64)
    for lengths, place in zip(kept_lengths, places, strict=True):
        chosen = place >= 0
        out[place[chosen]] = lengths[chosen]
    return out


def build_cpt_corpus(
    pools: list[Pool],
    tokenizer,
    output_dir: str | Path,
    *,
    tokenizer_name: str,
    max_length: int = 512,
    seed: int = 0,
    num_proc: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build and save the CPT corpus in bounded memory (:mod:`diffutron_data.stream`); return
    its manifest.

    Columns of the saved dataset: ``input_ids`` (with the tokenizer's special tokens), ``length``
    and ``origin`` (``file:line`` or ``dataset:split:row`` of the document).
    """
    start_build(tokenizer, tokenizer_name, num_proc)
    recipe = cpt_recipe(
        pools, tokenizer, tokenizer_name=tokenizer_name, max_length=max_length, seed=seed
    )
    with atomic_output(output_dir, kind="cpt-data", overwrite=overwrite) as (work, final):
        files, kept, selected, stats, problems, lengths = [], [], [], {}, [], []
        for index, pool in enumerate(pools):
            report = ReadReport()
            path, pool_kept, chosen, stats[pool.name], pool_lengths = _build_pool(
                pool, index, report, work, tokenizer, max_length, seed, num_proc
            )
            files.append(path)
            kept.append(pool_kept)
            selected.append(chosen)
            problems += report.problems
            lengths.append(pool_lengths)
        places = stream.final_places([len(k) for k in kept], selected, seed)
        order = _in_order(kept, places)
        packed = write_plan(order.tolist(), max_length, final / PLAN)
        manifest = _manifest(recipe, stats, order, np.concatenate([[], *lengths]), problems, packed)
        manifest["fingerprint"] = recipe_fingerprint(recipe)

        def write(out: Path, schema) -> None:
            stream.write_in_order(files, places, int(order.sum()), work, out, schema)

        stream.save_dataset(final, write, fingerprint(manifest))
        write_text(
            final / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        )
    logger.info(
        "saved %d documents (%d tokens) to %s", manifest["rows"], manifest["tokens"], output_dir
    )
    return manifest


def padding_report(
    lengths: list[int],
    max_length: int,
    *,
    batch_size: int = 64,
    window: int = 4096,
    packed_rows: list[int] | None = None,
) -> dict[str, Any]:
    """Pad fraction of random batches padded to their longest row, against packed rows
    (``packed_rows``' lengths, else :func:`~diffutron_data.packing.pack_lengths` over windows of
    ``window`` documents)."""
    if packed_rows is None:
        packed_rows = []
        for start in range(0, len(lengths), window):
            chunk = lengths[start : start + window]
            packed_rows += [sum(chunk[i] for i in row) for row in pack_lengths(chunk, max_length)]
    return {
        "batch_size": batch_size,
        "unpacked": round(padding_fraction(lengths, batch_size=batch_size), 6),
        "packed": round(padding_fraction(packed_rows, batch_size=batch_size, pad_to=max_length), 6),
        "packed_rows": len(packed_rows),
    }


def _manifest(recipe, stats, order, lengths, problems, packed) -> dict[str, Any]:
    """The manifest: the recipe, each pool's counts (:class:`CorpusStats`) and the total's, and
    the corpus's lengths (``order``: in its order; ``lengths``: of every tokenised document;
    ``packed``: of its packed rows)."""

    def counts(s: CorpusStats) -> dict[str, Any]:
        return {
            "read": s.read,
            "kept_after_filter": s.kept,
            "selected": s.selected,
            "not_sampled": s.kept - s.selected,
            "dropped": dict(sorted(s.dropped.items())),
        }

    total = CorpusStats()
    for s in stats.values():
        total.read += s.read
        total.kept += s.kept
        total.selected += s.selected
        total.dropped.update(s.dropped)
    manifest = copy.deepcopy(recipe)
    for entry in manifest["pools"]:
        entry.update(counts(stats[entry["name"]]))
    manifest["total"] = counts(total)
    manifest["rows"] = len(order)
    manifest["tokens"] = int(order.sum())
    manifest["token_length_histogram"] = histogram(lengths, recipe["max_length"])
    manifest["padding"] = padding_report(order.tolist(), recipe["max_length"], packed_rows=packed)
    manifest["packing"] = {
        "file": PLAN,
        "max_length": recipe["max_length"],
        "window": packing.WINDOW,
    }
    manifest["problems"] = problems
    return manifest
