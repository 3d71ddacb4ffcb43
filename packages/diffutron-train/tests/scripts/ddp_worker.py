"""Run by ``torchrun --nproc_per_node 2`` in test_distributed.py: train a tiny LoRA model on two
CPU processes (gloo), straight through and stopped-then-resumed, and write what each rank holds."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from diffutron_data import CPTCollator, corpus_sentences, load_tokenizer
from diffutron_train import LoopSettings, apply_lora, build_model, model_config, train_loop


def digest(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def fresh(tokenizer):
    base = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    return apply_lora(base, r=4, lora_alpha=8, lora_dropout=0.1)


def main(out: Path) -> None:
    tokenizer = load_tokenizer("tiny")
    encoded = [tokenizer(s)["input_ids"] for s in corpus_sentences()[:96]]
    rows = [{"input_ids": ids} for ids in encoded if len(ids) <= 40]
    collate = CPTCollator(pad_token_id=0, special_token_ids=(1, 2))
    settings = LoopSettings(
        batch_size=4, grad_accum=2, max_steps=4, save_every=2, learning_rate=3e-3, seed=1
    )
    rank = int(os.environ["RANK"])
    start = digest(fresh(tokenizer))
    straight = fresh(tokenizer)
    steps = train_loop(straight, rows, collate, out / "a", settings, mask_token_id=4)
    stopped = fresh(tokenizer)
    train_loop(stopped, rows, collate, out / "b", settings, mask_token_id=4, stop_after=2)
    resumed = fresh(tokenizer)
    train_loop(resumed, rows, collate, out / "b", settings, mask_token_id=4, resume=True)
    report = {
        "world_size": torch.distributed.get_world_size(),
        "backend": torch.distributed.get_backend(),
        "steps": steps,
        "start": start,
        "straight": digest(straight),
        "resumed": digest(resumed),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
