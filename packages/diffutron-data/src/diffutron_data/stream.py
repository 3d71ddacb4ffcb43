"""The CPT corpus in bounded memory (docs/training.md#bounded-memory), and the tokenising in
``num_proc`` processes that the SFT rows share (:func:`encoding`): every pass over the data
reads in chunks: the sources as they are tokenised in ``num_proc`` processes, and its own Arrow
files in record batches with plain reads (no memory map, whose pages would stay resident); it
writes what it keeps as it goes. What
is held whole is per document, never per token: the lengths, and the permutations that sample
each pool and shuffle their union, drawn as ``datasets``' ``shuffle(seed)`` draws them. The
final order is written bucket by bucket: each kept document goes to the bucket of its place in
the corpus, and each bucket (a bounded number of tokens) is read back, put in order and
appended to the dataset file.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from diffutron_common import write_text
from diffutron_data.errors import DataError

CHUNK = 4_096
"""Documents (or SFT conversations) a worker tokenises at a time."""
BUCKET_TOKENS = 4 << 20
"""About this many tokens per bucket of the final shuffle (16 MB of int32 ids) ..."""
MAX_BUCKETS = 512
"""... unless that makes more buckets than this (files open at once): then fewer, larger."""
SCHEMA = pa.schema(
    [("origin", pa.string()), ("input_ids", pa.list_(pa.int32())), ("length", pa.int64())]
)
_TOKENIZER: Any = None
"""A worker process's tokenizer (set once, when the worker starts)."""


def batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow stream file, read (not mapped) one at a time."""
    with pa.OSFile(str(path), "rb") as source:
        yield from pa.ipc.open_stream(source)


def _start(tokenizer: Any) -> None:
    """A worker's start: its tokenizer kept; Ctrl-C, which reaches the whole process group,
    ignored (the parent alone answers it)."""
    global _TOKENIZER
    _TOKENIZER = tokenizer
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _in_worker(work: Callable[[Any, Any], Any], chunk: Any) -> Any:
    """``work(chunk, backend)`` in a worker, with the tokenizer it started with (never a global
    read in the parent, where two builds may run at once in threads)."""
    return work(chunk, _TOKENIZER)


def _encode(
    chunk: tuple[list[str], list[str]], backend: Any
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(ids, lengths, origins)`` of a chunk of ``(texts, origins)``, tokenised by ``backend``
    with the model's special tokens and never truncated: the int32 ids of every text one after
    another."""
    texts, origins = chunk
    found = backend.encode_batch(texts, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in found), np.int64, len(found))
    ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in found), np.int32, lengths.sum())
    return ids, lengths, origins


@contextlib.contextmanager
def _encoder(tokenizer: Any, num_proc: int, work: Callable[[Any, Any], Any]) -> Iterator[Any]:
    """``map(chunks) -> work(chunk, backend)`` in order, ``backend`` being the Rust tokenizer:
    in this process, or in ``num_proc`` fresh worker processes (spawned, not forked: a fork of a
    process with threads can hang), a few chunks ahead of what is written; a worker that dies is
    an error, never a hang. Workers run one thread each (``build.start_build`` turns the Rust
    tokenizer's threads off)."""
    backend = tokenizer.backend_tokenizer
    if num_proc == 1:  # the Rust tokenizer's own threads, unless TOKENIZERS_PARALLELISM is off
        yield lambda chunks: (work(chunk, backend) for chunk in chunks)
        return
    with _started(num_proc, backend) as pool:
        yield lambda chunks: _ahead(pool, functools.partial(_in_worker, work), chunks, 2 * num_proc)


@contextlib.contextmanager
def encoding(
    chunks: Iterable[Any],
    tokenizer: Any,
    num_proc: int,
    work: Callable[[Any, Any], Any] = _encode,
) -> Iterator[Iterator[Any]]:
    """``work(chunk, backend)`` (a module-level function; ``backend`` is the Rust tokenizer of
    ``tokenizer``) over ``chunks``, in order, as they are asked for (the sources are read while
    the workers tokenise): in ``num_proc`` worker processes, never more than there are chunks,
    or here when there is one process or one chunk (no workers started for it)."""
    chunks = iter(chunks)
    first = list(itertools.islice(chunks, num_proc))  # at most num_proc chunks read ahead
    with _encoder(tokenizer, len(first) if len(first) > 1 else 1, work) as encode:
        yield encode(itertools.chain(first, chunks))


def _ready(_: int) -> None:
    time.sleep(0.1)  # long enough that every worker takes one


@contextlib.contextmanager
def _started(num_proc: int, backend: Any) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``num_proc`` spawned workers, all started before it is used. SIGINT and
    SIGTERM wait while they start (a worker cut off half-started prints a traceback), then act
    as they would have; the workers ignore SIGINT, which the parent answers for them."""
    context = multiprocessing.get_context("spawn")
    caught: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    handlers = {s: signal.signal(s, lambda n, _: caught.append(n)) for s in stops if main}
    try:
        pool = ProcessPoolExecutor(num_proc, context, initializer=_start, initargs=(backend,))
        list(pool.map(_ready, range(num_proc)))
    finally:
        for stop, handler in handlers.items():
            signal.signal(stop, handler)
    with pool:
        if caught:
            signal.raise_signal(caught[0])
        yield pool


def _ahead(
    pool: ProcessPoolExecutor, work: Callable[[Any], Any], items: Iterable[Any], window: int
) -> Iterator[Any]:
    """``work`` over ``items`` in ``pool``, in order, at most ``window`` items in flight; a
    worker that dies is one :class:`DataError`, never a hang."""
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise DataError(
            "a tokenising worker process died (out of memory?); run again, or with --num-proc 1"
        ) from None


def _kept_batch(ids: np.ndarray, sizes: np.ndarray, origins: list[str], max_length: int):
    """The record batch of a chunk's documents of at most ``max_length`` tokens."""
    inside = sizes <= max_length
    values = ids[np.repeat(inside, sizes)]
    offsets = np.concatenate([[0], np.cumsum(sizes[inside])])
    chosen = [o for o, k in zip(origins, inside.tolist(), strict=True) if k]
    columns = [
        pa.array(chosen, pa.string()),
        pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int32())),
        pa.array(sizes[inside], pa.int64()),
    ]
    return pa.record_batch(columns, schema=SCHEMA)


def tokenise(
    chunks: Iterable[tuple[list[str], list[str]]],
    kept: Path,
    tokenizer: Any,
    max_length: int,
    num_proc: int,
) -> Any:
    """Tokenise ``chunks`` of documents (``(texts, origins)``, read as they are asked for: the
    sources are read while the workers tokenise) and write those of at most ``max_length``
    tokens to ``kept``; the token lengths of every document, in order."""
    lengths = [np.zeros(0, np.int64)]
    with (
        pa.OSFile(str(kept), "wb") as sink,
        pa.ipc.new_stream(sink, SCHEMA) as writer,
        encoding(chunks, tokenizer, num_proc) as encoded,
    ):
        for ids, sizes, origins in encoded:
            lengths.append(sizes)
            writer.write_batch(_kept_batch(ids, sizes, origins, max_length))
    return np.concatenate(lengths)


def permutation(count: int, seed: int) -> np.ndarray:
    """The order ``datasets.Dataset.shuffle(seed=seed)`` puts ``count`` rows in."""
    return np.random.default_rng(seed).permutation(count)


def final_places(kept: list[int], selected: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """For each pool, each kept document's place in the corpus (-1: not sampled): the pools'
    ``selected`` documents (kept indices, in sample order) one after the other, then shuffled
    with ``seed`` as a whole."""
    union = np.concatenate([np.zeros(0, np.int64), *selected])
    pools = np.concatenate(
        [np.zeros(0, np.int64), *(np.full(len(s), i) for i, s in enumerate(selected))]
    )
    order = permutation(len(union), seed)  # place q holds union[order[q]]
    pool_at, index_at = pools[order], union[order]
    places = []
    for pool, count in enumerate(kept):
        here = np.full(count, -1, np.int64)
        mine = pool_at == pool
        here[index_at[mine]] = np.nonzero(mine)[0]
        places.append(here)
    return places


def _bucketed(kept: list[Path], places: list[np.ndarray], per: int, work: Path) -> list[Path]:
    """Each placed document of ``kept``, with its ``place``, in the bucket ``place // per``."""
    count = max(1, -(-max((int(p.max()) + 1 for p in places if len(p)), default=0) // per))
    paths = [work / f"bucket-{b}.arrow" for b in range(count)]
    schema = SCHEMA.append(pa.field("place", pa.int64()))
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(pa.OSFile(str(p), "wb")) for p in paths]
        writers = [stack.enter_context(pa.ipc.new_stream(s, schema)) for s in sinks]
        for path, place in zip(kept, places, strict=True):
            start = 0
            for batch in batches(path):
                here = place[start : start + batch.num_rows]
                start += batch.num_rows
                bucket = np.where(here >= 0, here // per, -1)
                for b in np.unique(bucket[bucket >= 0]).tolist():
                    rows = np.nonzero(bucket == b)[0]
                    part = batch.take(pa.array(rows)).append_column("place", pa.array(here[rows]))
                    writers[b].write_batch(part)
    return paths


def write_in_order(
    kept: list[Path], places: list[np.ndarray], tokens: int, work: Path, out: Path, schema
) -> None:
    """Write the placed documents of ``kept`` to the Arrow stream file ``out`` (``schema``: the
    dataset's, with its features) in the order of their places, :data:`BUCKET_TOKENS` at a
    time."""
    total = sum(int((p >= 0).sum()) for p in places)
    count = min(MAX_BUCKETS, max(1, -(-tokens // BUCKET_TOKENS)))
    per = max(1, -(-total // count))
    buckets = _bucketed(kept, places, per, work)
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        pending = pa.Table.from_batches([], schema)
        for path in buckets:
            with pa.OSFile(str(path), "rb") as source:
                table = pa.ipc.open_stream(source).read_all()
            path.unlink()  # a bucket of this build's work folder, written above
            table = table.take(pa.array(np.argsort(table.column("place").to_numpy())))
            table = table.drop_columns(["place"]).select(schema.names).cast(schema)
            pending = pa.concat_tables([pending, table])
            whole = pending.num_rows - pending.num_rows % CHUNK  # batches of CHUNK rows, so
            for start in range(0, whole, CHUNK):  # the file is the same whatever the buckets
                writer.write_table(pending.slice(start, CHUNK).combine_chunks())
            pending = pending.slice(whole).combine_chunks()  # a copy: the bucket can go
        if pending.num_rows:
            writer.write_table(pending.combine_chunks())


def save_dataset(folder: Path, write, fingerprint: str, features: Any = None) -> None:
    """A dataset folder ``datasets.load_from_disk`` reads: ``write(path, schema)`` writes its one
    Arrow file; its ``features`` (the CPT corpus's unless given) and state beside it."""
    import datasets

    features = (
        features
        if features is not None
        else datasets.Features(
            {
                "origin": datasets.Value("string"),
                "input_ids": datasets.List(datasets.Value("int32")),
                "length": datasets.Value("int64"),
            }
        )
    )
    name = "data-00000-of-00001.arrow"
    write(folder / name, features.arrow_schema)
    datasets.DatasetInfo(features=features).write_to_directory(str(folder))
    state: dict[str, Any] = {
        "_data_files": [{"filename": name}],
        "_fingerprint": fingerprint,
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    write_text(folder / "state.json", json.dumps(state, indent=2) + "\n")
