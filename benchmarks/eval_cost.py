"""What the Monte-Carlo log-likelihood costs and how noisy it is, as used for the CETVEL tasks.

    uv run python benchmarks/eval_cost.py [--model DIR] [--questions 20] [--seeds 8]

For XCOPA-TR validation questions (../shared/data/cetvel-dev), scores every choice with the
diffutron lm-eval adapter at mc_num 8, 32 and 128, under several seeds, and prints per mc_num:
the standard deviation of a choice's log-likelihood across seeds (mean over choices), how often
the chosen answer differs from the mc_num 128 majority, and seconds per question (all choices).
--model: a masked LM dir (e.g. the tiny preset's CPT output); default a random tiny ModernBERT
with the embedded tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

XCOPA = Path(__file__).resolve().parents[1].parent / "shared/data/cetvel-dev/xcopa_tr.val.jsonl"


class Request:
    def __init__(self, *args):
        self.args = args


def random_model_dir() -> str:
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from diffutron_data import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        cls_token_id=2,
        sep_token_id=1,
    )
    folder = tempfile.mkdtemp(prefix="eval-cost-")
    ModernBertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from diffutron_eval import DiffutronLM
    from diffutron_eval.lm_tasks.utils import xcopa_choices, xcopa_text

    model = args.model or random_model_dir()
    rows = [json.loads(line) for line in XCOPA.read_text(encoding="utf-8").splitlines()]
    rows = rows[: args.questions]
    requests = [
        Request(xcopa_text(row), " " + choice) for row in rows for choice in xcopa_choices(row)
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; model {model}")
    adapter = DiffutronLM(model, mc_num=8, batch_size=args.batch_size)
    lengths = [len(adapter.encode_pair(*r.args)[1]) for r in requests]
    print(
        f"{len(rows)} XCOPA-TR questions, {len(requests)} choices, continuation length "
        f"{min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.1f}); "
        f"{args.seeds} seeds; batch {args.batch_size}"
    )
    picks: dict[int, list[list[int]]] = {}
    print(f"{'mc_num':>6} | {'std of log p':>12} | {'answer flips':>12} | {'s/question':>10}")
    for mc_num in (128, 32, 8):
        scores, seconds = [], 0.0
        for seed in range(args.seeds):
            adapter = DiffutronLM(model, mc_num=mc_num, batch_size=args.batch_size, seed=seed)
            start = time.perf_counter()
            values = [v for v, _ in adapter.loglikelihood(requests, disable_tqdm=True)]
            seconds += time.perf_counter() - start
            scores.append(values)
        std = statistics.mean(statistics.stdev(s[i] for s in scores) for i in range(len(requests)))
        picks[mc_num] = [[int(s[2 * q + 1] > s[2 * q]) for q in range(len(rows))] for s in scores]
        majority = [
            int(sum(p[q] for p in picks[128]) * 2 > len(picks[128])) for q in range(len(rows))
        ]
        flips = statistics.mean(
            sum(p[q] != majority[q] for q in range(len(rows))) / len(rows) for p in picks[mc_num]
        )
        print(
            f"{mc_num:>6} | {std:>12.3f} | {flips:>11.1%} | "
            f"{seconds / (args.seeds * len(rows)):>10.3f}"
        )


if __name__ == "__main__":
    main()
