"""Instruction sets -> SFT rows for the MDLM objective (response-only maskable).

Each conversation is rendered with the chat template and split into prompt and response; both
parts are tokenised *separately* without special tokens and concatenated, so the prompt ids are
exactly what generation will see. A row holds ``input_ids``, ``maskable`` (False on the prompt,
True on the response and its end marker; the pad tail is the collator's business) and
``prompt_length``. Rows whose prompt leaves no room for a response within ``max_length`` are
dropped; rows whose response does not fit are dropped (default: every kept row ends with its end
marker) or right-truncated on request. Every drop is counted by reason.

The rows are built in bounded memory, as the CPT corpus is (:mod:`diffutron_data.stream`): the
sources are read in chunks while ``num_proc`` processes tokenise them, and each chunk's kept rows
are appended to the dataset's Arrow file in input order; what is held whole is one length and
one status per row, never the token ids.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from diffutron_common import check_number, write_text
from diffutron_data import stream
from diffutron_data.build import (
    atomic_output,
    fingerprint,
    histogram,
    recipe_fingerprint,
    recipe_header,
    start_build,
)
from diffutron_data.chat import DLLM_BERT_CHAT_TEMPLATE, split_prompt_response
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.instructions import iter_conversations
from diffutron_data.progress import progress
from diffutron_data.readers import describe_source
from diffutron_data.sources import Source, check_distinct

logger = logging.getLogger(__name__)

KEPT, TRUNCATED = "kept", "truncated"


def encode_example(
    prompt: str,
    response: str,
    tokenizer,
    *,
    max_length: int,
    truncate_response: bool = False,
) -> tuple[dict[str, Any] | None, str]:
    """Tokenise one prompt/response pair; return ``(row or None, status)``.

    Status is ``kept``, ``truncated``, ``prompt_too_long`` or ``response_too_long``.
    """
    prompt_ids = tokenizer.backend_tokenizer.encode(prompt, add_special_tokens=False).ids
    response_ids = tokenizer.backend_tokenizer.encode(response, add_special_tokens=False).ids
    return _assemble(prompt_ids, response_ids, max_length, truncate_response)


def _assemble(prompt_ids, response_ids, max_length, truncate_response):
    if len(prompt_ids) >= max_length:
        return None, "prompt_too_long"
    status = KEPT
    if len(prompt_ids) + len(response_ids) > max_length:
        if not truncate_response:
            return None, "response_too_long"
        response_ids = response_ids[: max_length - len(prompt_ids)]
        status = TRUNCATED
    row = {
        "input_ids": list(prompt_ids) + list(response_ids),
        "maskable": [False] * len(prompt_ids) + [True] * len(response_ids),
        "prompt_length": len(prompt_ids),
    }
    return row, status


SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("maskable", pa.list_(pa.bool_())),
        ("prompt_length", pa.int64()),
    ]
)


def encode_chunk(chunk: tuple[list[list[dict[str, str]]], list[str], str, int, bool], backend):
    """``(record batch of the kept rows, each row's status)`` of a chunk of ``(conversations,
    origins, chat_template, max_length, truncate_response)``: each conversation split into
    prompt and response with the template, tokenised by ``backend`` (a Rust tokenizer)."""
    conversations, origins, template, max_length, truncate_response = chunk
    split = [split_prompt_response(m, template=template) for m in conversations]
    encoded = zip(
        backend.encode_batch([prompt for prompt, _ in split], add_special_tokens=False),
        backend.encode_batch([response for _, response in split], add_special_tokens=False),
        origins,
        strict=True,
    )
    rows, kept, statuses = [], [], []
    for prompt, response, origin in encoded:
        row, status = _assemble(prompt.ids, response.ids, max_length, truncate_response)
        statuses.append(status)
        if row is not None:
            rows.append(row)
            kept.append(origin)
    lengths = np.fromiter((len(r["input_ids"]) for r in rows), np.int64, len(rows))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())  # never wraps
    total = int(lengths.sum())

    def flat(key: str, dtype) -> np.ndarray:
        return np.fromiter(itertools.chain.from_iterable(r[key] for r in rows), dtype, total)

    columns = [
        pa.array(kept, pa.string()),
        pa.ListArray.from_arrays(offsets, pa.array(flat("input_ids", np.int32))),
        pa.ListArray.from_arrays(offsets, pa.array(flat("maskable", np.bool_))),
        pa.array([r["prompt_length"] for r in rows], pa.int64()),
    ]
    return pa.record_batch(columns, schema=SCHEMA), statuses


def sft_recipe(
    sources: Iterable[Source],
    tokenizer,
    *,
    tokenizer_name: str,
    schema: str = "auto",
    max_length: int = 256,
    truncate_response: bool = False,
    chat_template: str = DLLM_BERT_CHAT_TEMPLATE,
    extra_conversations: Iterable[list[dict[str, str]]] = (),
    extra_name: str = "extra",
) -> dict[str, Any]:
    """Everything the SFT rows are made from (sources by content, the extra conversations by
    hash, the tokenizer by content, every setting), as :func:`diffutron_data.corpus.cpt_recipe`."""
    check_number("max_length", max_length, minimum=2, integer=True, error=DataError)
    sources = list(sources)
    check_distinct(sources)
    extra = list(extra_conversations)
    blob = json.dumps(extra, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return {
        **recipe_header("sft", tokenizer, tokenizer_name, max_length),
        "schema": schema,
        "truncate_response": truncate_response,
        "chat_template": chat_template,
        "sources": [describe_source(s) for s in sources],
        "extra": (
            {
                "name": extra_name,
                "conversations": len(extra),
                "sha256": hashlib.sha256(blob).hexdigest(),
            }
            if extra
            else None
        ),
    }


def _records(sources: list[Source], extra: list, recipe: dict[str, Any], report: ReadReport):
    """``(messages, origin)`` of every conversation of ``sources`` and then ``extra``."""
    name = (recipe["extra"] or {}).get("name", "extra")
    for source in sources:
        before = report.mark()
        conversations = iter_conversations(source, report, schema=recipe["schema"])
        yield from progress(conversations, desc=f"reading {source}", unit="row")
        report.check_yielded(source, before, what="instruction rows")
    for i, messages in enumerate(extra):
        yield messages, f"{name}:{i + 1}"


def _chunks(records: Iterator[tuple[list, str]], recipe: dict[str, Any], read: list[int]):
    """``records`` in chunks of :data:`~diffutron_data.stream.CHUNK` for :func:`encode_chunk`
    (which renders them: in the workers), counting them in ``read[0]``."""
    while block := list(itertools.islice(records, stream.CHUNK)):
        read[0] += len(block)
        messages, origins = (list(part) for part in zip(*block, strict=True))
        settings = (recipe["chat_template"], recipe["max_length"], recipe["truncate_response"])
        yield messages, origins, *settings


def _write_rows(chunks, tokenizer, num_proc: int, path: Path, schema) -> tuple[Any, Counter]:
    """Write the kept rows of ``chunks`` to the Arrow stream file ``path`` (``schema``: the
    dataset's, with its features); ``(each kept row's length, status counts)``."""
    lengths = [np.zeros(0, np.int64)]
    statuses: Counter[str] = Counter()
    with (
        pa.OSFile(str(path), "wb") as sink,
        pa.ipc.new_stream(sink, schema) as writer,
        stream.encoding(chunks, tokenizer, num_proc, encode_chunk) as encoded,
    ):
        for batch, found in encoded:
            statuses.update(found)
            if batch.num_rows:
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                ids = batch.column("input_ids")
                lengths.append(np.diff(ids.offsets.to_numpy()).astype(np.int64))
    return np.concatenate(lengths), statuses


def _manifest(recipe, key, report: ReadReport, extra: list, row_lengths, statuses):
    """The manifest: the recipe, what was read, kept, truncated and dropped (by reason), and the
    kept rows' lengths (``row_lengths``, in order)."""
    dropped = Counter(report.skipped)
    dropped.update({k: v for k, v in statuses.items() if k not in (KEPT, TRUNCATED)})
    return {
        **recipe,
        "read": report.read + len(extra),
        "kept": len(row_lengths),
        "truncated": statuses.get(TRUNCATED, 0),
        "dropped": dict(sorted(dropped.items())),
        "rows": len(row_lengths),
        "tokens": int(row_lengths.sum()),
        "token_length_histogram": histogram(row_lengths, recipe["max_length"]),
        "problems": report.problems,
        "fingerprint": key,
    }


def build_sft_dataset(
    sources: Iterable[Source] | None,
    tokenizer,
    output_dir: str | Path,
    *,
    tokenizer_name: str,
    extra_conversations: Iterable[list[dict[str, str]]] = (),
    num_proc: int = 1,
    overwrite: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Build and save SFT rows from instruction sources (and optional extra conversations,
    e.g. synthetic tasks); return the manifest. Rows keep the input order. ``settings`` are
    :func:`sft_recipe`'s (``schema``, ``max_length``, ``truncate_response``, ``chat_template``,
    ``extra_name``)."""
    import datasets

    sources = list(sources or [])
    start_build(tokenizer, tokenizer_name, num_proc)
    extra = list(extra_conversations)
    recipe = sft_recipe(
        sources, tokenizer, tokenizer_name=tokenizer_name, extra_conversations=extra, **settings
    )
    key, report, read = recipe_fingerprint(recipe), ReadReport(), [0]
    features = datasets.Features.from_arrow_schema(SCHEMA)
    with atomic_output(output_dir, kind="sft-data", overwrite=overwrite) as (work, final):
        rows = work / "rows.arrow"
        chunks = _chunks(_records(sources, extra, recipe, report), recipe, read)
        lengths, statuses = _write_rows(chunks, tokenizer, num_proc, rows, features.arrow_schema)
        if read[0] == 0:
            raise DataError("no usable instruction rows were read")
        manifest = _manifest(recipe, key, report, extra, lengths, statuses)
        if not len(lengths):
            raise DataError(
                f"every row was dropped ({manifest['dropped']}); is max_length too small?"
            )
        # the rows file is this build's own, in its work folder beside the output
        stream.save_dataset(
            final, lambda out, _: os.replace(rows, out), fingerprint(manifest), features
        )
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        write_text(final / "manifest.json", text)
    for reason, n in sorted(manifest["dropped"].items()):
        logger.warning("dropped %d row(s): %s", n, reason.replace("_", " "))
    return manifest
