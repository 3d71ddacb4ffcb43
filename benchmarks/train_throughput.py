"""Training-step throughput: packing against plain padding, and the output layer on masked rows
against the full output layer.

    uv run python benchmarks/train_throughput.py [--steps 20] [--ud-dir DIR] [--skip-cpu]

CPU: the tiny preset's CPT step (whole 4-layer model, masked-LM at 15%, AdamW) on the shared UD
Turkish text at max_length 128, batch 16: non-pad tokens per second for the four combinations.
GPU (when CUDA is present): a random model with mmBERT-base's shape, LoRA r 256 on Wqkv/Wo/Wi,
bf16 autocast, batch 64 x 512 packed tokens, tokens per second and peak memory, with the output
layer on masked rows and in full.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from common import UD_TURKISH, ud_sentences

from diffutron_data import load_tokenizer, pack_lengths
from diffutron_train import apply_lora, build_model, masked_lm_loss, model_config

MASK = 4
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 peaks (TFLOP/s) of the cards the estimate knows, by name fragment."""


class FullHead(torch.nn.Module):
    """The same model without its backbone/head split: the loss then uses full logits."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs):
        return self.inner(**kwargs)


def batches(documents, max_length, batch_size, packed, seed=0):
    """Lists of token-id rows: packed rows, or documents in a random order."""
    if packed:
        rows = []
        for start in range(0, len(documents), 4096):
            chunk = documents[start : start + 4096]
            rows += [
                [t for i in row for t in chunk[i]]
                for row in pack_lengths([len(d) for d in chunk], max_length)
            ]
    else:
        rows = list(documents)
    random.Random(seed).shuffle(rows)
    return [rows[i : i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]


def tensors(rows, device, width=None):
    width = width or max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    real = ids != 0
    return ids.to(device), real.to(device)


def measure(model, batch_list, steps, device, autocast=False):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    tokens, elapsed = 0, 0.0
    for step in range(steps + 2):  # two warm-up steps
        ids, real = tensors(batch_list[step % len(batch_list)], device)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = masked_lm_loss(
                model,
                ids,
                real,
                mask_token_id=MASK,
                attention_mask=real.long(),
                generator=generator,
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            elapsed += time.perf_counter() - start
            tokens += int(real.sum())
    return tokens / elapsed


def cpu(args):
    tokenizer = load_tokenizer("tiny")
    documents = [
        ids
        for ids in (tokenizer(s)["input_ids"] for s in ud_sentences(args.ud_dir))
        if len(ids) <= 128
    ]
    print(
        f"CPU, tiny preset ({torch.get_num_threads()} threads): {len(documents)} UD documents, "
        f"max_length 128, batch 16, {args.steps} steps each"
    )
    print(f"{'rows':>8} | {'output layer':>12} | {'non-pad tokens/s':>16} | {'pad':>5}")
    base = None
    for packed in (False, True):
        batch_list = batches(documents, 128, 16, packed)
        pad = 1 - sum(len(r) for b in batch_list for r in b) / sum(
            len(b) * max(map(len, b)) for b in batch_list
        )
        for restricted in (False, True):
            model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
            rate = measure(model if restricted else FullHead(model), batch_list, args.steps, "cpu")
            base = base or rate
            rows, head = "packed" if packed else "padded", "masked rows" if restricted else "full"
            print(f"{rows:>8} | {head:>12} | {rate:>11,.0f} ({rate / base:.2f}x) | {pad:>5.1%}")


def paper_shape(args, *, device: str, preset: str, rows: int, length: int) -> None:
    """CPT steps at the paper's shape (``preset="paper"``: mmBERT-base, LoRA r 256 on Wqkv/Wo/Wi,
    bf16 autocast on CUDA) on random packed tokens: tokens/s and peak memory, with the output
    layer on masked rows and in full, beside the compute-bound estimate (6 FLOPs per frozen
    parameter and token would be full fine-tuning; LoRA's frozen base needs about 4)."""
    cuda = device == "cuda"
    name = torch.cuda.get_device_name() if cuda else "CPU (dry run)"
    print(
        f"\n{name}: {preset} shape, LoRA (Wqkv, Wo, Wi), {'bf16 autocast, ' if cuda else ''}"
        f"batch {rows} x {length} packed random tokens, {args.steps} steps, torch AdamW"
    )
    print(f"{'output layer':>12} | {'tokens/s':>10} | {'peak GiB':>8} | {'bound tokens/s':>14}")
    g = torch.Generator().manual_seed(0)
    sizes = {} if preset == "paper" else {"vocab_size": 4096}
    vocab = model_config(preset, **sizes).vocab_size
    batch_list = [
        [torch.randint(5, vocab, (length,), generator=g).tolist() for _ in range(rows)]
        for _ in range(4)
    ]
    peak_tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    for restricted in (True, False):
        model = apply_lora(build_model(model_config(preset, **sizes), device=device, seed=0))
        params = sum(p.numel() for p in model.parameters())
        bound = f"{peak_tflops * 1e12 / (4 * params):,.0f}" if peak_tflops else "-"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        name = "masked rows" if restricted else "full"
        try:
            rate = measure(
                model if restricted else FullHead(model),
                batch_list,
                args.steps,
                device,
                autocast=cuda,
            )
        except torch.cuda.OutOfMemoryError:
            print(f"{name:>12} | {'out of memory':>10} |")
        else:
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
            print(f"{name:>12} | {rate:>10,.0f} | {peak:>8.1f} | {bound:>14}")
        del model
        if cuda:
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ud-dir", type=Path, default=UD_TURKISH)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument(
        "--dry-run", action="store_true", help="the GPU part's code on the CPU, tiny shape"
    )
    args = parser.parse_args()
    if args.dry_run:
        args.steps = min(args.steps, 2)
        paper_shape(args, device="cpu", preset="tiny", rows=4, length=64)
        return
    if not args.skip_cpu:
        cpu(args)
    if torch.cuda.is_available():
        paper_shape(args, device="cuda", preset="paper", rows=64, length=512)


if __name__ == "__main__":
    main()
