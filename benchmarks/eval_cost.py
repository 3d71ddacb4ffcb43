"""What the log-likelihoods cost: the Monte-Carlo bound of the CETVEL tasks and its noise, and
(``--pairs``) the three ways of scoring TurBLiMP's minimal pairs.

    uv run python benchmarks/eval_cost.py [--model DIR] [--questions 20] [--seeds 8]
    uv run python benchmarks/eval_cost.py --pairs [--model DIR] [--count 64] [--mmbert]

For XCOPA-TR validation questions (../shared/data/cetvel-dev), scores every choice with the
diffutron lm-eval adapter at mc_num 8, 32 and 128, under several seeds, and prints per mc_num:
the standard deviation of a choice's log-likelihood across seeds (mean over choices), how often
the chosen answer differs from the mc_num 128 majority, and seconds per question (all choices).
--model: a masked LM dir (e.g. the tiny preset's CPT output); default a random tiny ModernBERT
with the embedded tokenizer.

``--pairs``: ``--count`` TurBLiMP pairs (the first of each phenomenon file in
../shared/data/turblimp, else pairs made from the embedded corpus), scored by ``pll``,
``pll-word-l2r`` and ``elbo`` (mc_num 32) with the model (``--model``, default the demo's CPT
model, runs/demo/cpt/model, else a random tiny ModernBERT), and with ``--mmbert`` also a random
mmBERT-base-shaped model (22 layers, 768 wide, 256k vocabulary; the tiny tokenizer's ids). For each:
pairs per second batched (``--batch-size`` masked copies a pass, many sentences each), and PLL
with one sentence a pass and one masked copy a pass, as a naive scorer would run them. ``--device
cuda`` runs it on the GPU (the mmBERT shape in bf16).
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
TURBLIMP = XCOPA.parents[1] / "turblimp"
DEMO = Path(__file__).resolve().parents[1] / "runs/demo/cpt/model"


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


def turblimp_pairs(count: int) -> tuple[list[tuple[str, str]], str]:
    """``count`` pairs, the first rows of each phenomenon file in turn, and where they are from."""
    import csv

    files = sorted(TURBLIMP.glob("*.csv"))
    if not files:
        from diffutron_data import corpus_sentences

        made = [s.split() for s in corpus_sentences() if 4 <= len(s.split()) <= 14]
        pairs = [(" ".join(w), " ".join([w[1], w[0], *w[2:]])) for w in made[:count]]
        return pairs, "made from the embedded corpus (first two words swapped)"
    tables = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as handle:
            tables.append(list(csv.DictReader(handle, delimiter=";")))
    rows = [tables[i % len(files)][i // len(files)] for i in range(count)]
    return [(r["good_sentence"], r["bad_sentence"]) for r in rows], f"TurBLiMP ({TURBLIMP})"


def pairs_cost(model, tokenizer, pairs, batch_size: int, name: str) -> None:
    """Pairs per second of each method, batched, and of PLL run one sentence or one copy a pass."""
    from diffutron_eval import pairs as scoring
    from diffutron_sample import MaskedLM

    lm = MaskedLM(model.eval())
    affixes = scoring.Affixes.of(tokenizer)
    texts = [scoring.encode(tokenizer, s) for pair in pairs for s in pair]
    copies = sum(len(t.ids) for t in texts)
    print(f"\n{name}: {len(pairs)} pairs, {copies} masked copies for PLL; batch {batch_size}")
    print(f"{'method':>24} | {'passes':>8} | {'pairs/s':>8} | {'vs a sentence a pass':>21}")

    def timed(run) -> tuple[float, int]:
        before, start = lm.forward_passes, time.perf_counter()
        run()
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        return len(pairs) / (time.perf_counter() - start), lm.forward_passes - before

    naive, passes = timed(lambda: [scoring.pll(lm, [t], affixes, batch_size=10**6) for t in texts])
    rows = [("pll, a sentence a pass", naive, passes)]
    rows.append(
        ("pll, a copy a pass", *timed(lambda: scoring.pll(lm, texts, affixes, batch_size=1)))
    )
    for method in scoring.METHODS:
        rate, passes = timed(
            lambda m=method: scoring.score_texts(
                lm, texts, affixes, method=m, batch_size=batch_size
            )
        )
        rows.append((f"{method}, batched", rate, passes))
    for label, rate, passes in rows:
        print(f"{label:>24} | {passes:>8} | {rate:>8.2f} | {rate / naive:>21.2f}x")


def pairs_main(args) -> None:
    from diffutron_sample import load_model

    pairs, origin = turblimp_pairs(args.count)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; pairs {origin}")
    folder = args.model or (str(DEMO) if DEMO.is_dir() else random_model_dir())
    model, tokenizer = load_model(folder, device=args.device)
    with torch.inference_mode():
        pairs_cost(model, tokenizer, pairs, args.batch_size, f"model {folder}")
        if args.mmbert:
            from sample_speed import mmbert_shaped

            from diffutron_data import load_tokenizer

            tiny = load_tokenizer("tiny")
            dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
            shaped = mmbert_shaped(dtype, args.device)
            pairs_cost(shaped, tiny, pairs, args.batch_size, f"mmBERT-base shape, {dtype}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pairs", action="store_true", help="the minimal-pair methods' cost")
    parser.add_argument("--count", type=int, default=64, help="--pairs: how many pairs")
    parser.add_argument("--mmbert", action="store_true", help="--pairs: also the mmBERT shape")
    parser.add_argument("--device", default="cpu", help="--pairs: cpu, cuda, …")
    args = parser.parse_args()
    if args.pairs:
        pairs_main(args)
        return

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
