"""The quality-versus-passes frontier of every commit policy × cache setting on a chat model.

    uv run python benchmarks/decoding_frontier.py [--model runs/demo/sft/model] [--rows 16]
        [--out frontier.png] [--json frontier.json]
        [--caches none,fixed,adaptive,adaptive+delayed]

The demo's graded tasks (each task's chat prompts on the embedded held-out sentences), greedy,
the model's blocks and length. For each setting it prints the forward passes per answer, the
wall time of the whole set (one engine, 16 rows a pass), the token agreement with the reference
sampler (one token a step, no cache) over every new position and over the reference's answers
up to their end token, and the exact match on the tasks; every policy without a cache and with
the dual cache under its fixed and its adaptive refresh (and with delayed caching), then the
refresh rules at threshold 0.9 (fixed intervals against adaptive drift bounds), then the oracle
that bounds every learned filter: it commits each position whose proposal already is the
reference's final token (at least one a step, the most confident). It saves ``frontier.png``:
answer agreement against passes per answer, and, for the refresh rules, against wall time. A
model folder without a learned commit policy gets one trained in memory first (nothing is
written into the folder; ``diffutron-train policy`` does).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from diffutron_data import corpus_sentences, instruction_conversations, make_task_rows, sft_preset
from diffutron_eval import score_task
from diffutron_sample import (
    Engine,
    MaskedLM,
    SamplerConfig,
    find_commit_policy,
    load_model,
    prompt_ids,
    trim,
)

RULES = [
    ("reference", {}),
    ("steps/2", {"steps_share": 2}),
    ("steps/2 dilation 2", {"steps_share": 2, "dilation": 2}),
    ("threshold 0.9", {"threshold": 0.9}),
    ("threshold 0.7", {"threshold": 0.7}),
    ("entropy 0.1", {"entropy_bound": 0.1}),
    ("entropy 0.5", {"entropy_bound": 0.5}),
    ("margin 0.8", {"margin_threshold": 0.8}),
    ("margin 0.5", {"margin_threshold": 0.5}),
    ("klass 0.01", {"kl_threshold": 0.01}),
    ("klass 0.1", {"kl_threshold": 0.1}),
    ("learned", {"policy": "learned"}),
]
CACHES = [
    ("none", {}),
    ("fixed", {"cache": "dual", "cache_refresh": "fixed"}),
    ("adaptive", {"cache": "dual", "cache_refresh": "adaptive"}),
    ("adaptive+delayed", {"cache": "dual", "cache_refresh": "adaptive", "cache_delayed": True}),
]
REFRESHES = [  # at threshold 0.9: the adaptive bound against fixed intervals, at equal time
    ("fixed, block starts", {"cache_refresh": "fixed"}),
    *((f"fixed, interval {k}", {"cache_refresh": "fixed", "cache_interval": k}) for k in (1, 2, 4)),
    *(
        (f"adaptive, drift {d:g}", {"cache_refresh": "adaptive", "cache_drift": d})
        for d in (0.0, 0.05, 0.1, 0.2, 0.5)
    ),
]


def prompts_and_rows(rows: int):
    held_out = corpus_sentences(heldout=True)
    from diffutron_data import INSTRUCTIONS, row_to_messages

    tasks = sft_preset("tiny").synthetic_tasks
    found = []
    for task in tasks:
        for row in make_task_rows(task, held_out, n=rows, seed=1):
            text = {"instruction": INSTRUCTIONS[task], "input": row["input"], "output": "-"}
            found.append((task, row, row_to_messages(text, "alpaca")[0]["content"]))
    return found


def run(lm, tokenizer, prompts, config, batch=16):
    """``(canvases, passes per answer, seconds)`` of ``config`` over ``prompts``."""
    pad = tokenizer.pad_token_id
    engine = Engine(lm, tokenizer.mask_token_id, tokenizer.eos_token_id, pad, max_batch=batch)
    start = time.perf_counter()
    for i, prompt in enumerate(prompts):
        engine.add(i, prompt_ids(tokenizer, prompt), config)
    while engine.busy:
        engine.step()
    seconds = time.perf_counter() - start
    done = [engine.pop(i) for i in range(len(prompts))]
    passes = sum(r.passes for r in done) / len(done)
    return [(r.canvas.tolist(), r.start) for r in done], passes, seconds


def agreement(reference, other, ends):
    """``(over every new position, over the reference's answers up to their end)``."""
    same_all = total_all = same_answer = total_answer = 0
    for (ref, start), (got, _) in zip(reference, other, strict=True):
        new_ref, new_got = ref[start:], got[start:]
        pairs = list(zip(new_ref, new_got, strict=True))
        same_all += sum(a == b for a, b in pairs)
        total_all += len(pairs)
        end = next((i for i, t in enumerate(new_ref) if t in ends), len(new_ref) - 1)
        same_answer += sum(a == b for a, b in pairs[: end + 1])
        total_answer += end + 1
    return same_all / total_all, same_answer / total_answer


def exact_match(tokenizer, tasks, canvases):
    by_task: dict[str, tuple[list, list]] = {}
    for (task, row, _), (canvas, start) in zip(tasks, canvases, strict=True):
        rows, answers = by_task.setdefault(task, ([], []))
        rows.append(row)
        answers.append(trim(tokenizer, canvas[start:]))
    scores = [
        score_task(task, rows, answers)["exact_match"] for task, (rows, answers) in by_task.items()
    ]
    return sum(scores) / len(scores)


class Measure:
    """One setting's row: passes, wall time (the best of two runs), agreement, exact match."""

    def __init__(self, lm, tokenizer, tasks, reference, ends):
        self.lm, self.tokenizer, self.tasks = lm, tokenizer, tasks
        self.reference, self.ends = reference, ends

    def __call__(self, name, cache_name, config):
        prompts = [p for _, _, p in self.tasks]
        self.lm.refreshes = 0
        canvases, passes, seconds = run(self.lm, self.tokenizer, prompts, config)
        refreshes = self.lm.refreshes / len(prompts)
        seconds = min(seconds, run(self.lm, self.tokenizer, prompts, config)[2])
        every, answer = agreement(self.reference, canvases, self.ends)
        em = exact_match(self.tokenizer, self.tasks, canvases)
        print(
            f"{name:<24} {cache_name:<20} {passes:7.2f} {seconds:8.2f} {every:10.1%} "
            f"{answer:13.1%} {em:12.1%}" + (f"  refreshes {refreshes:.2f}" if refreshes else ""),
            flush=True,
        )
        return {
            "setting": name,
            "cache": cache_name,
            "passes": passes,
            "seconds": seconds,
            "refreshes": refreshes,
            "agree_all": every,
            "agree_answer": answer,
            "exact_match": em,
        }


def learned_policy(model_dir, model, tokenizer, defaults):
    policy = find_commit_policy(model_dir, tokenizer, required=False)
    if policy is not None:
        return policy, "from the model folder"
    from diffutron_train.policy import collect, fit, trace_config

    start = time.perf_counter()
    prompts = [c[:-1] for c in instruction_conversations()]
    traces = collect(model, tokenizer, prompts, trace_config(defaults))
    policy, report = fit(traces)
    seconds = time.perf_counter() - start
    return policy, f"trained in memory in {seconds:.0f} s on {len(prompts)} prompts ({report})"


def oracle(measure, model, base, reference):
    """The oracle's row: the learned policy's rule, where the classifier is replaced by the
    truth (the proposal equals the reference's final token at that column)."""
    import diffutron_sample.runner as runner
    from diffutron_sample.acceptance import Decision

    finals = [torch.tensor(canvas) for canvas, _ in reference]
    decide = runner.decide

    def knowing(requests, scores, proposal, offsets, **kw):
        thresholds = decide(requests, scores, proposal, offsets, **kw).thresholds
        columns = (proposal.cols - torch.tensor(offsets)[proposal.rows]).tolist()
        ids = [requests[row].id for row in proposal.rows.tolist()]
        truth = torch.tensor([int(finals[i][c]) for i, c in zip(ids, columns, strict=True)])
        accepted = torch.zeros_like(scores, dtype=torch.bool)
        accepted[proposal.rows, proposal.cols] = proposal.tokens == truth
        return Decision(thresholds, accepted)

    class Nothing:  # the learned rule's classifier, unused: the oracle decides
        def accepts(self, features):
            return torch.zeros(len(features), dtype=torch.bool)

    runner.decide, lm = knowing, measure.lm
    measure.lm = MaskedLM(model, commit_policy=Nothing())
    try:
        return measure("oracle filter", "none", base.replace(policy="learned"))
    finally:
        runner.decide, measure.lm = decide, lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/demo/sft/model")
    parser.add_argument("--rows", type=int, default=16, help="prompts per task")
    parser.add_argument("--out", default="frontier.png")
    parser.add_argument("--json", default=None)
    parser.add_argument("--caches", default=",".join(name for name, _ in CACHES))
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_model(args.model, device="cpu", dtype=torch.float32)
    defaults = SamplerConfig.from_pretrained(args.model).replace(temperature=0.0)
    base = SamplerConfig(
        steps=defaults.max_new_tokens,
        max_new_tokens=defaults.max_new_tokens,
        block_length=defaults.block_length,
        repetition_penalty=defaults.repetition_penalty,
    )
    policy, how = learned_policy(args.model, model, tokenizer, defaults)
    print(f"learned policy: {how}")
    lm = MaskedLM(model, commit_policy=policy)
    tasks = prompts_and_rows(args.rows)
    prompts = [p for _, _, p in tasks]
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    reference, _, _ = run(lm, tokenizer, prompts, base)
    print(
        f"{len(prompts)} prompts, {base.max_new_tokens} new tokens, "
        f"blocks of {base.block_length}, greedy"
    )
    print(
        f"{'setting':<24} {'cache':<20} {'passes':>7} {'seconds':>8} {'agree all':>10} "
        f"{'agree answer':>13} {'exact match':>12}"
    )
    measure = Measure(lm, tokenizer, tasks, reference, ends)
    results = []
    wanted = args.caches.split(",")
    for cache_name, cache in CACHES:
        if cache_name not in wanted:
            continue
        for name, changes in RULES:
            changes = dict(changes)
            share = changes.pop("steps_share", 1)
            config = base.replace(steps=base.steps // share, **changes, **cache)
            results.append(measure(name, cache_name, config))
    print("\nthe dual cache's refresh at threshold 0.9 (refreshes: full passes per answer)")
    for name, changes in REFRESHES:
        config = base.replace(threshold=0.9, cache="dual", **changes)
        results.append(measure("threshold 0.9", name, config))
    print("\nthe bound of a learned filter: the oracle, which knows the reference's tokens")
    results.append(oracle(measure, model, base, reference))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plot(results, args.out)


def plot(results, out):
    """Left: answer agreement against passes per answer, for each policy and cache; right: the
    refresh rules at threshold 0.9, against wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for cache, marker in (
        ("none", "o"),
        ("fixed", "s"),
        ("adaptive", "^"),
        ("adaptive+delayed", "v"),
    ):
        points = [r for r in results if r["cache"] == cache]
        if points:
            left.scatter(
                [r["passes"] for r in points],
                [100 * r["agree_answer"] for r in points],
                marker=marker,
                label={"none": "no cache"}.get(cache, f"dual cache, {cache} refresh"),
            )
        for r in points:
            left.annotate(r["setting"], (r["passes"], 100 * r["agree_answer"]), fontsize=6)
    left.set_xscale("log")
    left.set_xlabel("forward passes per answer (log scale)")
    left.set_ylabel("answer agreement with the reference (%)")
    left.legend(fontsize=8)
    sweep = [r for r in results if "," in r["cache"]] + [
        r for r in results if r["cache"] == "none" and r["setting"] == "threshold 0.9"
    ]
    for r in sweep:
        marker = "^" if r["cache"].startswith("adaptive") else "s" if "," in r["cache"] else "o"
        right.scatter(r["seconds"], 100 * r["agree_answer"], marker=marker, color="C0")
        label = r["cache"] if "," in r["cache"] else "no cache"
        right.annotate(label, (r["seconds"], 100 * r["agree_answer"]), fontsize=6)
    right.set_xlabel("wall time of the 48 answers (s), threshold 0.9")
    right.set_ylabel("answer agreement with the reference (%)")
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
