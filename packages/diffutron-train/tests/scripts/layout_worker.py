"""Run alone, or under ``torchrun`` as two "nodes" meeting through the rendezvous, by
test_distributed.py: train a tiny LoRA model with the gradient accumulation given (so that the
global batch is the same in both layouts), straight through and stopped-then-resumed; rank 0
writes each step's loss and the trained tensors of both runs."""

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from diffutron_data import CPTCollator, corpus_sentences, load_tokenizer
from diffutron_train import LoopSettings, apply_lora, build_model, model_config, train_loop


def fresh(tokenizer):
    base = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    return apply_lora(base, r=4, lora_alpha=8, lora_dropout=0.1)


def trained(model) -> dict:
    named = model.named_parameters()
    return {n: p.detach().cpu().contiguous() for n, p in named if p.requires_grad}


def main(out: Path, grad_accum: int) -> None:
    tokenizer = load_tokenizer("tiny")
    encoded = [tokenizer(s)["input_ids"] for s in corpus_sentences()[:96]]
    rows = [{"input_ids": ids} for ids in encoded if len(ids) <= 40]
    collate = CPTCollator(pad_token_id=0, special_token_ids=(1, 2))
    settings = LoopSettings(
        batch_size=4,
        grad_accum=grad_accum,
        max_steps=4,
        save_every=2,
        log_every=1,
        learning_rate=3e-3,
        seed=1,
    )
    losses: list[dict] = []
    straight = fresh(tokenizer)
    train_loop(straight, rows, collate, out / "a", settings, mask_token_id=4, log=losses.append)
    stopped = fresh(tokenizer)
    train_loop(stopped, rows, collate, out / "b", settings, mask_token_id=4, stop_after=2)
    resumed = fresh(tokenizer)
    train_loop(resumed, rows, collate, out / "b", settings, mask_token_id=4, resume=True)
    if int(os.environ.get("RANK", "0")) == 0:
        save_file(trained(straight), str(out / "straight.safetensors"))
        save_file(trained(resumed), str(out / "resumed.safetensors"))
        (out / "losses.json").write_text(json.dumps(losses), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
