"""The engine's own share of each step: the time outside the model's own modules.

The model's time is what runs inside its backbone (the Hugging Face ``model.model`` forward, or the
block cache's layer loop over the same modules) and its output layer (``head`` to ``decoder``),
timed with forward hooks (re-entrant calls counted once). Everything else in ``Engine.step``
(planning, batching, guidance and penalty arithmetic, drawing, commit selection, reading back and
bookkeeping) is the engine's. Greedy, repetition penalty 1.2. The heap is frozen once the model
is loaded (:func:`diffutron_sample.freeze_heap`), as the server and the CLI do.

    uv run python benchmarks/engine_overhead.py [--model runs/demo/sft/model] [--skip-mmbert]

1. The demo's SFT model: its four tasks' chat prompts on the embedded held-out sentences, 64 new
   tokens in blocks of 32, at batch 1, 16 and 64: the reference schedule (64 steps), threshold 0.9.
   Each batch runs once untimed (its first allocations), then 2 times (reference) or 8 times
   (threshold 0.9, which takes a few steps a run) timed; the share is that of the timed runs.
2. An mmBERT-base-shaped model (random weights, float32 on the CPU): 64-token prompts, 64 new
   tokens in blocks of 32, 16 steps, at batch 1 and 8, uncached and with the dual cache.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import diffutron_sample.cache as cache_module
from diffutron_sample import Engine, MaskedLM, SamplerConfig, freeze_heap


class ModelClock:
    """Seconds spent inside the model's own modules (nested calls counted once)."""

    def __init__(self, model: torch.nn.Module, cuda: bool):
        self.seconds, self.depth, self.started, self.cuda = 0.0, 0, 0.0, cuda
        parts = [model.model, model.head, model.decoder]
        for part in parts:
            part.register_forward_pre_hook(lambda *_: self.enter())
            part.register_forward_hook(lambda *_: self.leave())
        layers = cache_module.run_layers

        def timed_layers(*args, **kwargs):  # the block cache's loop over the model's layers
            self.enter()
            try:
                return layers(*args, **kwargs)
            finally:
                self.leave()

        cache_module.cached_states.__kwdefaults__["layers"] = timed_layers

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def enter(self) -> None:
        if self.depth == 0:
            self.started = self._now()
        self.depth += 1

    def leave(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.seconds += self._now() - self.started


CLOCKS: dict[int, ModelClock] = {}


def measure(
    model, prompts: list[list[int]], config: SamplerConfig, *, mask, eos, pad, repeats: int = 1
):
    """``(steps, step seconds, model seconds)`` of generating for every prompt in one batch,
    ``repeats`` times over (the sums)."""
    if id(model) not in CLOCKS:
        CLOCKS[id(model)] = ModelClock(model, next(model.parameters()).is_cuda)
    clock = CLOCKS[id(model)]
    clock.seconds = 0.0
    steps, total = 0, 0.0
    for _ in range(repeats):
        engine = Engine(MaskedLM(model), mask, eos, pad)
        for i, prompt in enumerate(prompts):
            engine.add(i, prompt, config)
        while engine.busy:
            start = clock._now()
            engine.step()
            total += clock._now() - start
            steps += 1
    return steps, total, clock.seconds


def row(label: str, batch: int, steps: int, total: float, inside: float) -> str:
    share = 1 - inside / total
    return (
        f"{label:>22} | {batch:>5} | {steps:>5} | {total / steps * 1e3:>8.1f} | "
        f"{inside / steps * 1e3:>8.1f} | {share:>7.1%}"
    )


HEADER = (
    f"{'schedule':>22} | {'batch':>5} | {'steps':>5} | {'ms/step':>8} | {'model ms':>8} | "
    f"{'engine':>7}"
)


def demo_model(model_dir: Path, batches) -> None:
    from diffutron_data import corpus_sentences, make_task_rows
    from diffutron_sample import load_model, prompt_ids

    model, tokenizer = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    freeze_heap()  # as `diffutron-serve` and `diffutron-sample` do once the model is loaded
    held_out = corpus_sentences(heldout=True)
    tasks = ("is_question", "first_word", "repeat", "last_word")
    rows = [r for task in tasks for r in make_task_rows(task, held_out, n=16, seed=1)]
    ids = [prompt_ids(tokenizer, f"{r['instruction']}\n\n{r['input']}") for r in rows]
    special = {
        "mask": tokenizer.mask_token_id,
        "eos": tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id or 0,
    }
    reference = SamplerConfig(
        steps=64, max_new_tokens=64, block_length=32, temperature=0.0, repetition_penalty=1.2
    )
    print(f"\nthe demo's SFT model ({model_dir}), 64 new tokens in blocks of 32, CPU float32")
    print(HEADER)
    for name, config, repeats in (
        ("reference (64 steps)", reference, 2),
        ("threshold 0.9", reference.replace(threshold=0.9), 8),  # a few steps a run
    ):
        for batch in batches:
            prompts = [ids[i % len(ids)] for i in range(batch)]
            measure(model, prompts, config, **special)  # warm-up: the batch's first allocations
            steps = measure(model, prompts, config, **special, repeats=repeats)
            print(row(name, batch, *steps), flush=True)


def mmbert_model(batches) -> None:
    from sample_speed import mmbert_shaped

    model = mmbert_shaped()
    freeze_heap()
    config = SamplerConfig(
        steps=16, max_new_tokens=64, block_length=32, temperature=0.0, repetition_penalty=1.2
    )
    print("\nmmBERT-base shape (random weights), 64-token prompts, 64 new tokens, blocks of 32,")
    print("16 steps, CPU float32")
    print(HEADER)
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        prompts = torch.randint(5, 256_000, (batch, 64), generator=generator).tolist()
        for cache in (None, "dual"):
            label = "uncached" if cache is None else "dual cache"
            steps = measure(model, prompts, config.replace(cache=cache), mask=4, eos=1, pad=0)
            print(row(label, batch, *steps), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("runs/demo/sft/model"))
    parser.add_argument("--skip-mmbert", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.model.is_dir():
        raise SystemExit(f"no SFT model at {args.model}: run `uv run diffutron demo` or --model")
    torch.manual_seed(0)
    with torch.no_grad():
        demo_model(args.model, (1, 16, 64))
        if not args.skip_mmbert:
            mmbert_model((1, 8))


if __name__ == "__main__":
    main()
