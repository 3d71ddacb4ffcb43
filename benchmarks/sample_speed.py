"""Sampler speed: the reference schedule against confidence-threshold decoding, and the restricted
output layer at mmBERT's 256k vocabulary.

    uv run python benchmarks/sample_speed.py [--train-seconds 120] [--skip-256k] [--ud-dir DIR]
    uv run python benchmarks/sample_speed.py --model runs/sft-tiny-stage1/model [--skip-256k]

1. Trains a small ModernBERT for --train-seconds on ../shared/data/ud-turkish (MDLM loss from
   diffutron-core, rows `<bos> sentence <eos>` padded to 72 with a maskable pad tail, as SFT rows
   are), then continues held-out sentence prefixes with the paper's generation shape (64 new
   tokens, blocks of 32, steps = new tokens): reference against threshold 0.9 and 0.7, and 0.9 with
   early stop. Prints forward passes, tokens/s and token agreement with the reference. On a
   CUDA GPU the training and generation run there (more steps in the same time).
   With --model DIR (an SFT model, e.g. the tiny preset's: diffutron-train cpt, then sft), the
   same comparison on chat prompts instead: the synthetic tasks' instructions (classification,
   extraction, transformation) on held-out UD sentences, left-padded in one batch.
2. On a random model with mmBERT-base's shape (22 layers, hidden 768, 256k vocabulary) and the
   paper's generation shape (64-token prompt, 128 new tokens, blocks of 32), times a denoising step
   with the output layer restricted to the masked positions of the active block against the full
   output layer (same tokens either way; CPU float32, or GPU bf16 at batch 16).
3. On a CUDA GPU, when present: the mmBERT-base-sized model in bf16, batch 64, tokens/s of the
   reference and of threshold 0.9 (random weights: the threshold rarely fires, so this measures
   the per-step cost).

With --cache it measures the block cache (and on CUDA the compiled step) instead
(benchmarks/cache_speed.py): threshold 0.9 alone, + prefix cache, + dual cache on the SFT model
of --model (default: the demo's, runs/demo/sft/model), then each cache mode on the mmBERT-base
shape with 256 new tokens at batch 1 and 8 (CPU) or 1 and 32 (CUDA, compiled and not):

    uv run python benchmarks/sample_speed.py --cache [--model DIR] [--cache-steps 64]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from common import UD_TURKISH, ud_sentences
from transformers import ModernBertConfig, ModernBertForMaskedLM

from diffutron_core import mask_tokens, mdlm_loss, sample_t
from diffutron_sample import MaskedLM, SamplerConfig, generate

PAD, EOS, BOS, MASK = 0, 1, 2, 4
ROW = 72


def modernbert(**dims) -> ModernBertConfig:
    """A ModernBERT config with mmBERT's special ids and sdpa attention."""
    ids = {"pad_token_id": PAD, "eos_token_id": EOS, "bos_token_id": BOS}
    return ModernBertConfig(
        **ids, cls_token_id=BOS, sep_token_id=EOS, attn_implementation="sdpa", **dims
    )


def ud_rows(tokenizer, folder: Path = UD_TURKISH):
    encoded = [tokenizer(line)["input_ids"] for line in ud_sentences(folder)]
    return [ids for ids in encoded if 8 < len(ids) <= 48]


def train_small_model(rows, seconds: float, device: str = "cpu", seed: int = 0):
    torch.manual_seed(seed)
    config = modernbert(
        vocab_size=4096,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=128,
    )
    model = ModernBertForMaskedLM(config).to(device)
    data = torch.full((len(rows), ROW), PAD, device=device)
    for i, ids in enumerate(rows):
        data[i, : len(ids)] = torch.tensor(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    g = torch.Generator(device=device).manual_seed(seed)
    steps, start, loss = 0, time.perf_counter(), float("nan")
    while time.perf_counter() - start < seconds:
        batch = data[torch.randint(len(data), (32,), generator=g, device=device)]
        maskable = torch.ones_like(batch, dtype=torch.bool)
        maskable[:, 0] = False  # <bos> is always given
        t = sample_t(len(batch), generator=g, device=device)
        noisy, masked = mask_tokens(batch, t, mask_token_id=MASK, maskable=maskable, generator=g)
        hidden = model.model(input_ids=noisy).last_hidden_state
        logits = model.decoder(model.head(hidden[masked & maskable]))  # masked rows only
        loss = mdlm_loss(logits, batch, masked, maskable, t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    print(f"trained {steps} steps of 32 rows in {seconds:.0f} s, last loss {loss.item():.2f}")
    return model.eval()


def timed_generate(model, prompts, config, **kwargs):
    lm = MaskedLM(model, restrict_head=kwargs.pop("restrict_head", True))
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    kwargs.setdefault("mask_token_id", MASK)
    kwargs.setdefault("eos_token_id", EOS)
    canvas = generate(lm, prompts, config, **kwargs)
    if canvas.is_cuda:
        torch.cuda.synchronize()
    return canvas, lm.forward_passes, time.perf_counter() - start


def compare_modes(model, prompts, new_tokens: int, block: int, label: str, attention_mask=None):
    """Reference (one token per step, the paper's steps = new tokens) against fast modes.
    ``attention_mask`` marks the real tokens of left-padded prompts."""
    reference = SamplerConfig(steps=new_tokens, max_new_tokens=new_tokens, block_length=block)
    modes = [
        ("reference", reference),
        ("threshold 0.9", reference.replace(threshold=0.9)),
        ("threshold 0.7", reference.replace(threshold=0.7)),
        ("0.9 + early stop", reference.replace(threshold=0.9, early_stop=True)),
    ]
    print(f"\n{label}: {len(prompts)} prompts x {new_tokens} new tokens, block {block}")
    print("passes: mean per prompt run alone (and how many times fewer than the reference);")
    print("tokens/s, speed-up: the whole batch at once, wall-clock; agreement: generated tokens")
    print("equal to the reference's, up to each reference answer's end token")
    header = ("mode", "passes", "tokens/s", "speed-up", "agreement")
    print(f"{header[0]:>16} | {header[1]:>13} | {header[2]:>9} | {header[3]:>8} | {header[4]:>9}")
    results = []
    mask = torch.ones_like(prompts) if attention_mask is None else attention_mask
    alone = [p[m.bool()][None] for p, m in zip(prompts, mask, strict=True)]
    for name, config in modes:
        timed_generate(model, prompts[:2], config, attention_mask=mask[:2])  # warm-up
        canvas, _, seconds = timed_generate(model, prompts, config, attention_mask=mask)
        passes = [timed_generate(model, p, config)[1] for p in alone]
        results.append((name, canvas[:, -new_tokens:], passes, seconds))
    ref_tokens, ref_passes, ref_time = results[0][1], sum(results[0][2]), results[0][3]
    ends = torch.isin(ref_tokens, torch.tensor([EOS, PAD], device=ref_tokens.device))
    index = torch.arange(new_tokens, device=ref_tokens.device).expand_as(ref_tokens)
    upto = index <= torch.where(ends, index, new_tokens - 1).min(dim=1, keepdim=True).values
    answer = torch.where(ends, index, new_tokens).min(dim=1).values.float().mean().item()
    print(f"(reference answers: {answer:.1f} tokens before the end token on average)")
    for name, tokens, passes, seconds in results:
        agree = (tokens == ref_tokens)[upto].float().mean().item()
        mean = sum(passes) / len(passes)
        print(
            f"{name:>16} | {mean:>5.1f} ({ref_passes / sum(passes):4.2f}x) | "
            f"{len(prompts) * new_tokens / seconds:>9.1f} | {ref_time / seconds:>7.2f}x | "
            f"{agree:>8.1%}"
        )


def chat_prompts(model_dir: Path, count: int, ud_dir: Path, device: str) -> None:
    """The reference against the fast modes on an SFT model, with the synthetic tasks'
    instructions on held-out UD sentences (never in the embedded corpus) as chat prompts."""
    from diffutron_data import make_task_rows
    from diffutron_sample import batch_prompt_ids, load_model

    model, tokenizer = load_model(str(model_dir), device=device, dtype=torch.float32)
    sentences = [s for s in ud_sentences(ud_dir) if 4 <= len(s.split()) <= 12]
    tasks = ("is_question", "first_word", "last_word", "repeat")
    rows = [row for task in tasks for row in make_task_rows(task, sentences, n=count // 4)]
    prompts = [f"{row['instruction']}\n\n{row['input']}" for row in rows]
    ids, mask = batch_prompt_ids(tokenizer, prompts)
    label = f"SFT model {model_dir}, chat prompts ({', '.join(tasks)}), {device}"
    compare_modes(
        model, ids.to(device), new_tokens=64, block=32, label=label, attention_mask=mask.to(device)
    )


def random_modernbert(dtype=torch.float32, device="cpu", **dims):
    """A seeded random ModernBERT masked LM of ``dims``, in eval mode."""
    torch.manual_seed(0)
    with torch.device(device):
        model = ModernBertForMaskedLM(modernbert(**dims))
    return model.to(dtype).eval()


def mmbert_shaped(dtype=torch.float32, device="cpu"):
    return random_modernbert(
        dtype,
        device,
        vocab_size=256_000,
        hidden_size=768,
        intermediate_size=1152,
        num_hidden_layers=22,
        num_attention_heads=12,
        max_position_embeddings=8192,
        global_attn_every_n_layers=3,
        local_attention=128,
    )


def restricted_head(device="cpu", dtype=torch.float32, batch=1, prompt=64, new=128, steps=32):
    """Per-step time of the paper's generation shape (blocks of 32) with the full output layer
    and with the output layer on the masked rows of the active block only."""
    model = mmbert_shaped(dtype, device)
    prompts = torch.randint(5, 256_000, (batch, prompt), device=device)
    config = SamplerConfig(steps=steps, max_new_tokens=new, block_length=32)
    print(
        f"\nmmBERT-base shape, 256k vocabulary, {device} {str(dtype).split('.')[-1]}: "
        f"batch {batch}, {prompt}-token prompt, {new} new tokens, blocks of 32, {steps} steps"
    )
    print(f"{'output layer':>16} | {'ms per step':>11} | {'speed-up':>8}")
    timed_generate(model, prompts, config.replace(max_new_tokens=32, steps=steps // 4))  # warm-up
    results = {}
    for restrict in (False, True):
        canvas, passes, seconds = timed_generate(model, prompts, config, restrict_head=restrict)
        results[restrict] = (canvas, seconds / passes)
    same = torch.equal(results[False][0], results[True][0])
    for restrict, name in ((False, "full"), (True, "masked rows")):
        per_step = results[restrict][1]
        print(f"{name:>16} | {per_step * 1e3:>11.1f} | {results[False][1] / per_step:>7.2f}x")
    ceiling = backbone_step(model, prompts, prompt + new)
    print(
        f"{'none (ceiling)':>16} | {ceiling * 1e3:>11.1f} | {results[False][1] / ceiling:>7.2f}x"
        "   <- the backbone alone: no output layer can do better"
    )
    print(f"(same tokens either way: {same})")
    return model


def backbone_step(model, prompts, width: int, repeats: int = 8) -> float:
    """Seconds of one forward pass of the backbone alone over a ``width``-token canvas."""
    canvas = torch.cat(
        [
            prompts,
            torch.full((len(prompts), width - prompts.shape[1]), MASK, device=prompts.device),
        ],
        dim=1,
    )
    with torch.no_grad():
        model.model(input_ids=canvas)  # warm-up
        if canvas.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model.model(input_ids=canvas)
        if canvas.is_cuda:
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def gpu(model):
    model = model.to("cuda", torch.bfloat16)
    prompts = torch.randint(5, 256_000, (64, 64), device="cuda")
    config = SamplerConfig(steps=128, max_new_tokens=128, block_length=32)
    print(
        f"\nGPU {torch.cuda.get_device_name()}: mmBERT-base-sized random model, bf16, batch 64, "
        "64-token prompts, 128 new tokens"
    )
    print(f"{'mode':>16} | {'forward passes':>14} | {'tokens/s':>9}")
    timed_generate(model, prompts[:8], config.replace(steps=32, max_new_tokens=32))  # warm-up
    for name, cfg, restrict in (
        ("reference", config, True),
        ("reference, full head", config, False),
        ("threshold 0.9", config.replace(threshold=0.9), True),
    ):
        torch.cuda.reset_peak_memory_stats()
        _, passes, seconds = timed_generate(model, prompts, cfg, restrict_head=restrict)
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"{name:>16} | {passes:>14} | {64 * 128 / seconds:>9.0f}   (peak {peak:.1f} GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=120)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--ud-dir", type=Path, default=UD_TURKISH)
    parser.add_argument("--model", type=Path, help="an SFT model dir: chat prompts on it")
    parser.add_argument("--skip-256k", action="store_true")
    parser.add_argument("--only-256k", action="store_true")
    parser.add_argument(
        "--cpu-batch",
        type=int,
        default=4,
        help="batch of the 256k per-step timing on the CPU (at batch 1 the output layer is bound "
        "by reading its 786 MB of weights, whatever the rows)",
    )
    parser.add_argument("--cache", action="store_true", help="measure the block cache instead")
    parser.add_argument("--cache-steps", type=int, default=64, help="steps for 256 new tokens")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    if args.cache:
        cache_benchmark(args, device)
        return
    if args.model and not args.only_256k:
        chat_prompts(args.model, args.prompts, args.ud_dir, device)
    elif not args.only_256k:
        from diffutron_data import load_tokenizer

        rows = ud_rows(load_tokenizer("tiny"), args.ud_dir)
        held_out, train = rows[: args.prompts], rows[args.prompts :]
        model = train_small_model(train, args.train_seconds, device)
        prompts = torch.tensor([ids[:8] for ids in held_out], device=device)
        label = f"small model trained {args.train_seconds:.0f} s on UD, {device}"
        compare_modes(model, prompts, new_tokens=64, block=32, label=label)
    if not args.skip_256k:
        if device == "cuda":
            big = restricted_head("cuda", torch.bfloat16, batch=16)
            gpu(big)
        else:
            restricted_head(batch=args.cpu_batch)


def cache_benchmark(args, device: str) -> None:
    import cache_speed

    model_dir = args.model or Path("runs/demo/sft/model")
    if not args.only_256k:
        if model_dir.is_dir():
            cache_speed.tiny_sft(model_dir, args.ud_dir, args.prompts, device)
        else:
            print(f"no SFT model at {model_dir}: run `uv run diffutron demo` or pass --model DIR")
    if args.skip_256k:
        return
    if device == "cuda":
        big = mmbert_shaped(torch.bfloat16, "cuda")
        peak = cache_speed.peak_for(torch.cuda.get_device_name())
        cache_speed.mmbert_modes(big, (1, 32), args.cache_steps, True, peak)
    else:
        cache_speed.mmbert_modes(mmbert_shaped(), (1, 8), args.cache_steps, False)


if __name__ == "__main__":
    main()
