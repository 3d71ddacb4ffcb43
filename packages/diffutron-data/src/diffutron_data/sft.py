"""Instruction sets -> SFT rows for the MDLM objective (response-only maskable).

Each conversation is rendered with the chat template and split into prompt and response; both
parts are tokenised *separately* without special tokens and concatenated, so the prompt ids are
exactly what generation will see. A row holds ``input_ids``, ``maskable`` (False on the prompt,
True on the response and its end marker; the pad tail is the collator's business) and
``prompt_length``. Rows whose prompt leaves no room for a response within ``max_length`` are
dropped; rows whose response does not fit are dropped (default: every kept row ends with its end
marker) or right-truncated on request. Every drop is counted by reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
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


def _encode_batch(batch, tokenizer, max_length, truncate_response):
    backend = tokenizer.backend_tokenizer
    prompts = backend.encode_batch(batch["prompt"], add_special_tokens=False)
    responses = backend.encode_batch(batch["response"], add_special_tokens=False)
    out: dict[str, list] = {"input_ids": [], "maskable": [], "prompt_length": [], "status": []}
    for p, r in zip(prompts, responses, strict=True):
        row, status = _assemble(p.ids, r.ids, max_length, truncate_response)
        row = row or {"input_ids": [], "maskable": [], "prompt_length": 0}
        for key, value in row.items():
            out[key].append(value)
        out["status"].append(status)
    return out


def _usable(statuses: list[str]) -> list[bool]:
    return [s in (KEPT, TRUNCATED) for s in statuses]


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
    """``{prompt, response, origin}`` of every conversation of ``sources`` and then ``extra``."""
    template, name = recipe["chat_template"], (recipe["extra"] or {}).get("name", "extra")
    for source in sources:
        before = report.mark()
        conversations = iter_conversations(source, report, schema=recipe["schema"])
        for messages, origin in progress(conversations, desc=f"reading {source}", unit="row"):
            prompt, response = split_prompt_response(messages, template=template)
            yield {"prompt": prompt, "response": response, "origin": origin}
        report.check_yielded(source, before, what="instruction rows")
    for i, messages in enumerate(extra):
        prompt, response = split_prompt_response(messages, template=template)
        yield {"prompt": prompt, "response": response, "origin": f"{name}:{i + 1}"}


def _encode(rows, recipe: dict[str, Any], tokenizer, work: Path, key: str, num_proc: int):
    """``(kept rows, status counts)``: ``rows`` tokenised, those that do not fit dropped."""
    encoded = rows.map(
        _encode_batch,
        batched=True,
        num_proc=num_proc if 1 < num_proc < len(rows) else None,  # one process: no pool
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_length": recipe["max_length"],
            "truncate_response": recipe["truncate_response"],
        },
        remove_columns=["prompt", "response"],
        cache_file_name=str(work / "encoded.arrow"),
        new_fingerprint=f"{key}-encoded",
        desc="tokenising",
    )
    statuses = Counter(column(encoded, "status"))
    kept = encoded.filter(
        _usable,
        input_columns="status",
        batched=True,
        cache_file_name=str(work / "kept.arrow"),
        new_fingerprint=f"{key}-kept",
    ).remove_columns("status")
    return kept, statuses


def _manifest(recipe, key, report: ReadReport, extra: list, kept, statuses) -> dict[str, Any]:
    row_lengths = [len(ids) for ids in column(kept, "input_ids")]
    dropped = Counter(report.skipped)
    dropped.update({k: v for k, v in statuses.items() if k not in (KEPT, TRUNCATED)})
    return {
        **recipe,
        "read": report.read + len(extra),
        "kept": len(kept),
        "truncated": statuses.get(TRUNCATED, 0),
        "dropped": dict(sorted(dropped.items())),
        "rows": len(kept),
        "tokens": sum(row_lengths),
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
    import pyarrow as pa

    sources = list(sources or [])
    start_build(tokenizer, tokenizer_name, num_proc)
    extra = list(extra_conversations)
    recipe = sft_recipe(
        sources, tokenizer, tokenizer_name=tokenizer_name, extra_conversations=extra, **settings
    )
    key, report = recipe_fingerprint(recipe), ReadReport()
    with atomic_output(output_dir, kind="sft-data", overwrite=overwrite) as (work, final):
        columns = {"prompt": pa.string(), "response": pa.string(), "origin": pa.string()}
        count = write_arrow(_records(sources, extra, recipe, report), columns, work / "rows.arrow")
        if count == 0:
            raise DataError("no usable instruction rows were read")
        rows = datasets.Dataset.from_file(str(work / "rows.arrow"))
        kept, statuses = _encode(rows, recipe, tokenizer, work, key, num_proc)
        manifest = _manifest(recipe, key, report, extra, kept, statuses)
        if not len(kept):
            raise DataError(
                f"every row was dropped ({manifest['dropped']}); is max_length too small?"
            )
        save(kept, final, manifest)
    for reason, n in sorted(manifest["dropped"].items()):
        logger.warning("dropped %d row(s): %s", n, reason.replace("_", " "))
    return manifest
