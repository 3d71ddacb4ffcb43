"""How much the gathered MDLM loss saves over a full-canvas cross-entropy.

    uv run python benchmarks/core_loss.py [--batch 8] [--length 256] [--vocab 32000]

`diffutron_core.mdlm_loss` gathers the masked rows before the float32 cross-entropy; the naive form
computes the cross-entropy of every position and then masks it. Prints forward+backward time of
both at a few mask rates, and the bytes of the float32 rows each one materialises.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from diffutron_core import mdlm_loss


def naive_loss(logits, target, masked, maskable, t):
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")  # (B, L)
    per_row = (ce * masked * (1 / t)[:, None]).sum(1) / maskable.sum(1).clamp(min=1)
    return per_row.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, args.length)
    target = torch.randint(0, args.vocab, shape, generator=g)
    maskable = torch.ones(shape, dtype=torch.bool)
    base = torch.randn(*shape, args.vocab, generator=g).to(dtype)
    print(
        f"B={args.batch} L={args.length} V={args.vocab} logits {args.dtype}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'mask rate':>9} | {'gathered ms':>11} | {'naive ms':>9} | {'speed-up':>8} | "
        f"{'fp32 MB gathered':>16} | {'fp32 MB naive':>13}"
    )
    for rate in (0.15, 0.5, 0.9):
        t = torch.full((args.batch,), rate)
        masked = torch.rand(shape, generator=g) < rate
        timings = []
        for fn in (mdlm_loss, naive_loss):
            logits = base.clone().requires_grad_(True)
            timer = benchmark.Timer(
                stmt="fn(logits, target, masked, maskable, t).backward()",
                globals={
                    "fn": fn,
                    "logits": logits,
                    "target": target,
                    "masked": masked,
                    "maskable": maskable,
                    "t": t,
                },
            )
            timings.append(timer.blocked_autorange(min_run_time=1.0).median * 1e3)
        gathered_mb = masked.sum().item() * args.vocab * 4 / 2**20
        naive_mb = masked.numel() * args.vocab * 4 / 2**20
        print(
            f"{rate:>9.2f} | {timings[0]:>11.1f} | {timings[1]:>9.1f} | "
            f"{timings[1] / timings[0]:>7.2f}x | {gathered_mb:>16.0f} | {naive_mb:>13.0f}"
        )


if __name__ == "__main__":
    main()
