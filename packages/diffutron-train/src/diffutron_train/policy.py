"""The learned commit policy (docs/sampling.md#learned-policy), trained on the CPU for the user's
own model: the reference sampler (greedy, one token a step) runs on the model's prompts, every
masked position of the active block is logged at every step with its features, and labelled by
whether its proposal then is the token finally committed there. A classifier of about 1,300
parameters learns the label; its cut-off is the lowest whose precision on held-out prompts
reaches the target, so what it commits early is what the reference would have committed."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from diffutron_sample import (
    CommitPolicy,
    Engine,
    MaskedLM,
    SamplerConfig,
    prompt_ids,
    tokenizer_fingerprint,
)
from diffutron_sample.learned import check_replaceable_policy
from diffutron_sample.text import Prompt
from diffutron_train.errors import TrainError

logger = logging.getLogger(__name__)

HIDDEN = 32
DEFAULT_PRECISION = 0.998
"""The held-out precision the cut-off must reach by default: measured on the demo model, 0.99
lets errors through that grow into whole answers (docs/sampling.md#learned-policy)."""


@dataclass
class Traces:
    """Every logged candidate: its ``features`` ``(N, F)``, ``labels`` ``(N,)`` (its proposal
    is the final token) and the prompt it came from (``prompts`` ``(N,)``)."""

    features: torch.Tensor
    labels: torch.Tensor
    prompts: torch.Tensor


def trace_config(defaults: SamplerConfig) -> SamplerConfig:
    """The reference sampler the traces come from: the model's blocks and length, greedy, one
    token a step, no parallel rule, no cache."""
    return SamplerConfig(
        steps=defaults.max_new_tokens,
        max_new_tokens=defaults.max_new_tokens,
        block_length=defaults.block_length,
        repetition_penalty=defaults.repetition_penalty,
        cfg_scale=defaults.cfg_scale,
    )


@torch.no_grad()
def collect(
    model: Any, tokenizer: Any, prompts: Sequence[Prompt], config: SamplerConfig, batch: int = 32
) -> Traces:
    """Run ``config`` on every prompt (``batch`` at a time) and label what each step proposed."""
    lm = model if isinstance(model, MaskedLM) else MaskedLM(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    engine = Engine(lm, tokenizer.mask_token_id, tokenizer.eos_token_id, pad, max_batch=batch)
    logged: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def tracer(requests, rows, columns, features, tokens) -> None:
        ids = torch.tensor([r.id for r in requests])[rows.cpu()]
        logged.append((ids, columns.cpu(), features.cpu(), tokens.cpu()))

    engine.runner.tracer = tracer
    for i, prompt in enumerate(prompts):
        engine.add(i, prompt_ids(tokenizer, prompt), config)
    finals: dict[int, torch.Tensor] = {}
    while engine.busy:
        for event in engine.step():
            if event.error is not None:
                raise TrainError(f"prompt {event.id} failed: {event.error}")
            if event.done:
                finals[int(str(event.id))] = engine.pop(event.id).canvas.cpu()
    for key in list(engine.requests):  # filled without a last event
        finals[int(str(key))] = engine.pop(key).canvas.cpu()
    width = max(len(c) for c in finals.values())
    table = torch.full((len(prompts), width), -1, dtype=torch.long)
    for key, canvas in finals.items():
        table[key, : len(canvas)] = canvas
    ids = torch.cat([x[0] for x in logged])
    columns = torch.cat([x[1] for x in logged])
    labels = torch.cat([x[3] for x in logged]) == table[ids, columns]
    return Traces(torch.cat([x[2] for x in logged]), labels, ids)


def _split(traces: Traces, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of the training and held-out candidates, split by prompt."""
    prompts = sorted(set(traces.prompts.tolist()))
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: max(1, round(len(prompts) * share))])
    held_out = torch.tensor([p in held for p in traces.prompts.tolist()])
    return ~held_out, held_out


def fit(
    traces: Traces, *, seed: int = 0, epochs: int = 30, precision: float = DEFAULT_PRECISION
) -> tuple:
    """``(policy, report)``: the classifier trained on 80% of the prompts, its cut-off the lowest
    reaching ``precision`` on the other 20%."""
    count = len(traces.labels)
    if count < 100 or traces.labels.all() or not traces.labels.any():
        kind = "final" if traces.labels.all() else "not final"
        why = "are too few" if count < 100 else f"are all {kind} (the model's guesses never move)"
        raise TrainError(
            f"{count} logged positions {why}, nothing to learn from; give more or other "
            "prompts (--prompts), or more new tokens in the model's sampler_config.json"
        )
    train, held = _split(traces, 0.2, seed)
    torch.manual_seed(seed)
    policy = CommitPolicy(hidden=HIDDEN)
    x, y = traces.features[train], traces.labels[train].float()
    policy.get_buffer("mean").copy_(x.mean(0))
    policy.get_buffer("std").copy_(x.std(0).clamp(min=1e-6))
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for part in torch.randperm(len(y), generator=order).split(1024):
            optimiser.zero_grad()
            loss_fn(policy(x[part]), y[part]).backward()
            optimiser.step()
    with torch.no_grad():
        probs = torch.sigmoid(policy(traces.features[held]))
    policy.cutoff, found = choose_cutoff(probs, traces.labels[held], precision)
    return policy.eval(), {"held_out_positions": int(held.sum()), **found}


def choose_cutoff(probs: torch.Tensor, labels: torch.Tensor, precision: float) -> tuple:
    """Going down from 0.999 (to 0.5), the last cut-off before the accepted positions' share of
    right ones first falls below ``precision``, with its precision and recall measured. When
    none reaches it, 0.999, with what it measured and ``reached`` False."""

    def measured(cutoff: float) -> tuple[float, float]:
        accepted = probs >= cutoff
        hit = float(labels[accepted].float().mean()) if accepted.any() else 0.0
        return hit, float(accepted[labels].float().mean()) if labels.any() else 0.0

    best: tuple[float, float, float] | None = None
    for cutoff in torch.linspace(0.5, 0.999, 500).tolist()[::-1]:
        if not (probs >= cutoff).any():
            continue
        hit, recall = measured(cutoff)
        if hit < precision:
            break
        best = (cutoff, hit, recall)
    reached = best is not None
    cutoff, hit, recall = best if best is not None else (0.999, *measured(0.999))
    return cutoff, {"cutoff": cutoff, "precision": hit, "recall": recall, "reached": reached}


def train_policy(
    model_dir: str | Path,
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    defaults: SamplerConfig,
    *,
    seed: int = 0,
    precision: float = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """Collect, fit and write the policy into ``model_dir``; what it measured."""
    check_replaceable_policy(Path(model_dir))  # before minutes of work
    start = time.perf_counter()
    config = trace_config(defaults)
    traces = collect(model, tokenizer, prompts, config)
    collected = time.perf_counter() - start
    policy, report = fit(traces, seed=seed, precision=precision)
    info = {
        "prompts": len(prompts),
        "positions": len(traces.labels),
        "final_share": float(traces.labels.float().mean()),
        "trace_sampler": config.to_dict(),
        "target_precision": precision,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "collect_seconds": round(collected, 1),
        **report,
    }
    policy.save(model_dir, fingerprint=tokenizer_fingerprint(tokenizer), info=info)
    return info
