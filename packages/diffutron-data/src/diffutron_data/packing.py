"""Batching that wastes little: pack whole documents into ``max_length`` rows.

Documents are never split: within each window of documents, best-fit decreasing puts every
document into the fullest row that still has room, so rows are nearly full and no document is cut.
Attention across documents of one row is *not* blocked: the packed row is one sequence with the
documents separated by their own ``<bos>``/``<eos>`` tokens (RoBERTa's FULL-SENTENCES choice for
masked-LM pre-training; ModernBERT's sdpa/eager attention takes a 2-D mask only). Each row keeps
``document_lengths`` so a trainer can build block-diagonal masks or reset positions if it wants.
"""

from __future__ import annotations

import bisect
import collections
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffutron_data.errors import DataError


def pack_lengths(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Best-fit decreasing: rows of document indices, each row's lengths summing to <= max_length.

    Ties keep the original order, and each row lists its documents in their original order, so the
    result is deterministic.
    """
    too_long = [n for n in lengths if n > max_length]
    if too_long:
        raise DataError(
            f"{len(too_long)} document(s) are longer than max_length {max_length}; "
            "filter them first"
        )
    rows: list[list[int]] = []
    by_free: dict[int, collections.deque[int]] = {}  # free space -> rows with that much room
    rooms: list[int] = []  # the keys of by_free, sorted: the best fit is one bisection away
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        need = lengths[index]
        at = bisect.bisect_left(rooms, need)
        if at == len(rooms):
            rows.append([])
            row, room = len(rows) - 1, max_length
        else:
            room = rooms[at]
            row = by_free[room].popleft()
            if not by_free[room]:
                del by_free[room], rooms[at]
        rows[row].append(index)
        if room - need not in by_free:
            by_free[room - need] = collections.deque()
            bisect.insort(rooms, room - need)
        by_free[room - need].append(row)
    return [sorted(row) for row in rows]


def _pack_batch(batch: dict[str, list], max_length: int) -> dict[str, list]:
    documents = batch["input_ids"]
    rows = pack_lengths([len(d) for d in documents], max_length)
    return {
        "input_ids": [[t for i in row for t in documents[i]] for row in rows],
        "document_lengths": [[len(documents[i]) for i in row] for row in rows],
    }


def pack_documents(dataset, max_length: int, *, window: int = 4096, num_proc: int | None = None):
    """Pack a tokenised dataset (``input_ids``) into rows of at most ``max_length`` tokens.

    Packs within consecutive windows of ``window`` documents (bounded memory and time; a larger
    window packs a little tighter). Returns a dataset with ``input_ids`` and ``document_lengths``.
    """
    return dataset.map(
        _pack_batch,
        batched=True,
        batch_size=window,
        num_proc=num_proc,
        fn_kwargs={"max_length": max_length},
        remove_columns=dataset.column_names,
        desc=f"packing into rows of {max_length}",
    )


def padding_fraction(
    lengths: Sequence[int],
    *,
    batch_size: int,
    pad_to: int | None = None,
    seed: int = 0,
) -> float:
    """Fraction of pad tokens when rows are batched in a random order (seeded) and padded to the
    longest row of each batch, or to ``pad_to`` when given."""
    if not lengths:
        return 0.0
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    tokens = padded = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        width = pad_to if pad_to is not None else max(batch)
        tokens += sum(batch)
        padded += width * len(batch)
    return 1 - tokens / padded


PLAN = "packing.arrow"
"""The packing plan ``prepare cpt`` stores beside the corpus: each packed row's documents."""
WINDOW = 4096


def write_plan(lengths: Sequence[int], max_length: int, path: Path) -> list[int]:
    """Pack the corpus's documents (``lengths``, in its order) as :func:`pack_documents` does,
    window by window, and write each row's document indices to ``path`` (an Arrow stream,
    column ``documents``); each row's length."""
    import pyarrow as pa

    schema = pa.schema([("documents", pa.list_(pa.int64()))])
    rows: list[int] = []
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(lengths), WINDOW):
            chunk = lengths[start : start + WINDOW]
            packed = pack_lengths(chunk, max_length)
            rows += [sum(chunk[i] for i in row) for row in packed]
            documents = [[start + i for i in row] for row in packed]
            writer.write_batch(pa.record_batch([pa.array(documents, schema[0].type)], schema))
    return rows


class PackedRows:
    """The packed rows of a prepared corpus, put together when read: row ``i`` is the documents
    the stored plan lists for it, one after another (``input_ids`` and ``document_lengths``, as
    :func:`pack_documents` gives them), so training starts without packing the corpus first."""

    def __init__(self, corpus: Any, plan: Path) -> None:
        import pyarrow as pa

        self.corpus = corpus
        with pa.memory_map(str(plan)) as source:  # mapped, read as rows are asked for
            self.plan = pa.ipc.open_stream(source).read_all().column("documents")

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: Any) -> dict[str, list[int]]:
        documents = self.corpus[self.plan[int(index)].as_py()]["input_ids"]
        return {
            "input_ids": [t for d in documents for t in d],
            "document_lengths": [len(d) for d in documents],
        }


def packed_rows(corpus: Any, max_length: int) -> Any:
    """``corpus`` packed into rows of ``max_length``: lazily from the plan ``prepare`` stored
    beside it when it was made for this length, else (data prepared before plans were stored)
    packed now by :func:`pack_documents`."""
    files = getattr(corpus, "cache_files", None) or []
    folder = Path(files[0]["filename"]).parent if files else None
    if folder is not None and (folder / PLAN).is_file():
        import json

        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("packing", {}).get("max_length") == max_length:
            return PackedRows(corpus, folder / PLAN)
    return pack_documents(corpus, max_length, window=WINDOW)
