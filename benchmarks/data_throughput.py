"""Corpus-builder throughput and padding waste, on the shared UD Turkish text.

    uv run python benchmarks/data_throughput.py [--repeat 10] [--max-length 128] [--tokenizer tiny]

Reads ../shared/data/ud-turkish/*.txt (one sentence a line), repeated --repeat times so the work
outweighs process start-up, and reports documents per second for
  * tokenise + filter (the `datasets.map` / `filter` steps of the builder) at num_proc 1 and 2;
  * the whole `build_cpt_corpus` (read, tokenise, filter, shuffle, save) at num_proc 1 and 2;
then the pad fraction of random batches of 64 padded to their longest row, padded to max_length,
and of packed rows (best-fit decreasing, padded to max_length).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets
from common import ud_sentences

from diffutron_data import (
    Pool,
    Source,
    build_cpt_corpus,
    load_tokenizer,
    pack_documents,
    padding_fraction,
)
from diffutron_data.corpus import _tokenize_batch, _within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--tokenizer", default="tiny")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    tokenizer = load_tokenizer(args.tokenizer)
    lines = ud_sentences()
    texts = lines * args.repeat
    print(
        f"{len(lines)} UD sentences x {args.repeat} = {len(texts)} documents, "
        f"tokenizer {args.tokenizer}, max_length {args.max_length}, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = Path(tmp) / "ud.txt"
        corpus_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        raw = datasets.Dataset.from_dict({"text": texts})
        print(f"\n{'num_proc':>8} | {'tokenise+filter docs/s':>22} | {'full build docs/s':>17}")
        for num_proc in (1, 2):
            start = time.perf_counter()
            tokens = raw.map(
                _tokenize_batch,
                batched=True,
                num_proc=num_proc if num_proc > 1 else None,
                fn_kwargs={"tokenizer": tokenizer},
                remove_columns=["text"],
                load_from_cache_file=False,
            )
            kept = tokens.filter(
                _within,
                input_columns="length",
                batched=True,
                num_proc=num_proc if num_proc > 1 else None,
                fn_kwargs={"max_length": args.max_length},
                load_from_cache_file=False,
            )
            map_rate = len(texts) / (time.perf_counter() - start)
            start = time.perf_counter()
            build_cpt_corpus(
                [Pool("ud", [Source(str(corpus_file))])],
                tokenizer,
                Path(tmp) / f"out{num_proc}",
                tokenizer_name=args.tokenizer,
                max_length=args.max_length,
                num_proc=num_proc,
            )
            build_rate = len(texts) / (time.perf_counter() - start)
            print(f"{num_proc:>8} | {map_rate:>22,.0f} | {build_rate:>17,.0f}")
        lengths = kept["length"]
        lengths = list(lengths[: len(lengths) // args.repeat])  # one copy of the text
        packed = pack_documents(
            datasets.Dataset.from_dict({"input_ids": kept["input_ids"][: len(lengths)]}),
            args.max_length,
        )
        rows = [len(r) for r in packed["input_ids"]]
    print(f"\npadding at batch 64 ({len(lengths)} documents kept of {len(lines)}):")
    print(
        f"  unpacked, padded to longest in batch : {padding_fraction(lengths, batch_size=64):6.1%}"
    )
    print(
        f"  unpacked, padded to max_length       : "
        f"{padding_fraction(lengths, batch_size=64, pad_to=args.max_length):6.1%}"
    )
    print(
        f"  packed ({len(rows)} rows), padded to max_length : "
        f"{padding_fraction(rows, batch_size=64, pad_to=args.max_length):6.1%}"
    )


if __name__ == "__main__":
    main()
