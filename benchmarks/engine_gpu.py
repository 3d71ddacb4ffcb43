"""The engine on an mmBERT-base-shaped model: tokens/s and ms per step at batch 1, 16 and 64,
eager and compiled, with no cache and with the dual cache, beside the compute-bound estimate.

    uv run python benchmarks/engine_gpu.py              # CUDA, bf16, the mmBERT-base shape
    uv run python benchmarks/engine_gpu.py --dry-run    # the CPU, float32, a tiny ModernBERT

64-token prompts, 128 new tokens in blocks of 32, 32 steps (no threshold), greedy. The estimate
is backbone parameters (less the embedding table) x canvas positions run x 2 FLOPs over the card's
dense bf16 peak, per step. ``--budget`` seconds bound the whole run: what would start after it is
said and skipped (compiling a shape takes a while).
"""

from __future__ import annotations

import argparse
import time

import torch
from cache_speed import _estimate_ms, peak_for
from sample_speed import mmbert_shaped, random_modernbert

from diffutron_sample import Engine, Execution, MaskedLM, SamplerConfig


def tiny(device: str) -> torch.nn.Module:
    dims = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 96}
    dims |= {"num_hidden_layers": 3, "num_attention_heads": 4, "local_attention": 32}
    return random_modernbert(torch.float32, device, max_position_embeddings=512, **dims)


def run(lm: MaskedLM, prompts: torch.Tensor, config: SamplerConfig) -> tuple[int, float]:
    """``(steps, seconds)`` of generating for every prompt as one batch."""
    engine = Engine(lm, mask_token_id=4, eos_token_id=None, pad_token_id=0)
    for i, prompt in enumerate(prompts.tolist()):
        engine.add(i, prompt, config)
    if prompts.is_cuda:
        torch.cuda.synchronize()
    start, steps = time.perf_counter(), 0
    while engine.busy:
        engine.step()
        steps += 1
    if prompts.is_cuda:
        torch.cuda.synchronize()
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="a tiny model on the CPU")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args()
    begin = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.dry_run
    device = "cuda" if cuda else "cpu"
    model = mmbert_shaped(torch.bfloat16, "cuda") if cuda else tiny("cpu")
    vocab = model.config.vocab_size
    name = torch.cuda.get_device_name() if cuda else "CPU"
    peak = peak_for(name) if cuda else None
    config = SamplerConfig(steps=32, max_new_tokens=128, block_length=32)
    dtype = str(next(model.parameters()).dtype).split(".")[-1]
    print(f"{name}, {dtype}: 64-token prompts, 128 new tokens, blocks of 32, 32 steps, greedy")
    print("| batch | step | cache | ms/step | tokens/s | bound ms/step |")
    print("|---:|---|---|---:|---:|---:|")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for batch in (int(b) for b in args.batches.split(",")):
            prompts = torch.randint(5, vocab, (batch, 64), generator=generator).to(device)
            for compiled in (False, True):
                for cache in (None, "dual"):
                    label = f"| {batch} | {'compiled' if compiled else 'eager'} | {cache or '-'} |"
                    if time.perf_counter() - begin > args.budget:
                        print(f"{label} skipped: over the {args.budget:.0f} s budget | | |")
                        continue
                    lm = MaskedLM(model, execution=Execution(compile=compiled))
                    cfg = config.replace(cache=cache)
                    if compiled:  # warm-up: compile the shapes this run meets
                        run(lm, prompts, cfg)
                    lm.forward_passes = lm.positions_run = 0
                    steps, seconds = run(lm, prompts, cfg)
                    per_step = seconds / steps * 1e3
                    bound = _estimate_ms(model, lm.positions_run, lm.forward_passes, peak)
                    shown = "-" if bound is None else f"{bound:.2f}"
                    rate = batch * 128 / seconds
                    print(f"{label} {per_step:.1f} | {rate:.0f} | {shown} |", flush=True)
    print(f"\nwall time {time.perf_counter() - begin:.0f} s")


if __name__ == "__main__":
    main()
