"""The continual pre-training corpus builder (the paper's §4.1 recipe, reproducible).

Per pool of sources: stream documents to disk, tokenise with the base tokenizer (``num_proc``
workers), drop every document longer than ``max_length`` tokens (filter, never truncate),
optionally sample ``sample_size`` documents after a seeded shuffle. Then shuffle the union with the
seed and save it with ``datasets.save_to_disk`` beside a ``manifest.json``. The same inputs, seed
and tokenizer give the same files, byte for byte, whatever ``num_proc``.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffutron_common import check_number
from diffutron_data.build import (
    atomic_output,
    column,
    histogram,
    recipe_fingerprint,
    recipe_header,
    save,
    start_build,
    write_arrow,
)
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.lines import BYTES_PER_TOKEN
from diffutron_data.packing import pack_lengths, padding_fraction
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


def _tokenize_batch(batch: dict[str, list], tokenizer) -> dict[str, list]:
    """Tokenise with the model's special tokens (what the model sees); no truncation."""
    encodings = tokenizer.backend_tokenizer.encode_batch(batch["text"], add_special_tokens=True)
    ids = [e.ids for e in encodings]
    return {"input_ids": ids, "length": [len(x) for x in ids]}


def _within(lengths: list[int], max_length: int) -> list[bool]:
    return [n <= max_length for n in lengths]


def _read_pool(pool: Pool, path: Path, report: ReadReport, max_length: int) -> int:
    """Write the pool's documents to ``path``; one longer in bytes than ``max_length`` tokens
    could hold is dropped as ``too_long`` before it is tokenised (or held whole)."""

    def records():
        for source in pool.sources:
            before = report.mark()
            texts = iter_texts(source, report, max_bytes=max_length * BYTES_PER_TOKEN)
            for text, origin in progress(texts, desc=f"reading {source}"):
                yield {"text": text, "origin": origin}
            report.check_yielded(source, before)

    import pyarrow as pa

    return write_arrow(records(), {"text": pa.string(), "origin": pa.string()}, path)


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


def _build_pool(pool: Pool, index, report, work: Path, key, tokenizer, max_length, seed, num_proc):
    """``(kept documents, stats, token lengths)`` of one pool: read, tokenised, filtered to
    ``max_length`` and sampled to ``pool.sample_size``."""
    import datasets

    raw = work / f"pool-{index}.arrow"
    count = _read_pool(pool, raw, report, max_length)
    workers = num_proc if 1 < num_proc < count else None  # one process: no worker pool
    ds = datasets.Dataset.from_file(str(raw)).map(
        _tokenize_batch,
        batched=True,
        num_proc=workers,
        fn_kwargs={"tokenizer": tokenizer},
        remove_columns=["text"],
        cache_file_name=str(work / f"pool-{index}-tokens.arrow"),
        new_fingerprint=f"{key}-{index}-tokens",
        desc=f"tokenising {pool.name}",
    )
    kept = ds.filter(
        _within,
        input_columns="length",
        batched=True,
        fn_kwargs={"max_length": max_length},
        num_proc=workers,
        cache_file_name=str(work / f"pool-{index}-kept.arrow"),
        new_fingerprint=f"{key}-{index}-kept",
        desc=f"filtering {pool.name} to <= {max_length} tokens",
    )
    stats = CorpusStats(read=report.read, tokenised=len(ds), kept=len(kept))
    stats.dropped.update(report.skipped)
    stats.dropped["too_long"] += len(ds) - len(kept)  # and those too long to tokenise
    if pool.sample_size is not None and pool.sample_size < len(kept):
        kept = kept.shuffle(seed=seed).select(range(pool.sample_size))
    elif pool.sample_size is not None:
        logger.warning(
            "pool %s: asked for %d documents, only %d pass the filter; keeping all",
            pool.name,
            pool.sample_size,
            len(kept),
        )
    stats.selected = len(kept)
    return kept, stats, column(ds, "length")


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
    """Build and save the CPT corpus; return its manifest.

    Columns of the saved dataset: ``input_ids`` (with the tokenizer's special tokens), ``length``
    and ``origin`` (``file:line`` or ``dataset:split:row`` of the document).
    """
    import datasets

    start_build(tokenizer, tokenizer_name, num_proc)
    recipe = cpt_recipe(
        pools, tokenizer, tokenizer_name=tokenizer_name, max_length=max_length, seed=seed
    )
    key = recipe_fingerprint(recipe)
    with atomic_output(output_dir, kind="cpt-data", overwrite=overwrite) as (work, final):
        selected, stats, problems, lengths = [], {}, [], []
        for index, pool in enumerate(pools):
            report = ReadReport()
            kept, stats[pool.name], pool_lengths = _build_pool(
                pool, index, report, work, key, tokenizer, max_length, seed, num_proc
            )
            problems += report.problems
            lengths += pool_lengths
            selected.append(kept)
        corpus = datasets.concatenate_datasets(selected).shuffle(seed=seed)
        manifest = _manifest(recipe, stats, corpus, lengths, problems)
        manifest["fingerprint"] = key
        save(corpus, final, manifest)
    logger.info(
        "saved %d documents (%d tokens) to %s", manifest["rows"], manifest["tokens"], output_dir
    )
    return manifest


def padding_report(
    lengths: list[int], max_length: int, *, batch_size: int = 64, window: int = 4096
) -> dict[str, Any]:
    """Pad fraction of random batches padded to their longest row, against packed rows
    (:func:`~diffutron_data.packing.pack_lengths` over windows of ``window`` documents)."""
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


def _manifest(recipe, stats: dict[str, CorpusStats], corpus, lengths, problems) -> dict[str, Any]:
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
    manifest["rows"] = len(corpus)
    corpus_lengths = column(corpus, "length")
    manifest["tokens"] = sum(corpus_lengths)
    manifest["token_length_histogram"] = histogram(lengths, recipe["max_length"])
    manifest["padding"] = padding_report(corpus_lengths, recipe["max_length"])
    manifest["problems"] = problems
    return manifest
