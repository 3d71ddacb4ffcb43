"""Iterative unmasking: LLaDA's / dLLM's reference sampler, and confidence-threshold fast decoding.

The canvas is the prompt (left-padded across a batch, positions counted from each row's first
token, so a row gives the same tokens as it would alone) followed by ``max_new_tokens`` masks.
Blocks of ``block_length`` are filled left to right. Each step runs the backbone once over the
whole canvas (twice the batch with guidance) and the output layer only at the still-masked
positions of the active block, the only logits the algorithm reads (docs/sampling.md#one-step).
:func:`generate` and :func:`infill` are loops over :class:`~diffutron_sample.engine.Engine`,
which holds each row as a request of its own; the proposals come from
:mod:`diffutron_sample.proposals`, and which of them a step commits from the scheduler's plan
(:mod:`diffutron_sample.scheduler`) and the runner (:mod:`diffutron_sample.runner`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffutron_core import pad_rows
from diffutron_sample.config import SamplerConfig
from diffutron_sample.engine import Engine, check_fits
from diffutron_sample.errors import SampleError
from diffutron_sample.masked_lm import Execution, MaskedLM

__all__ = ["Callback", "generate", "infill", "left_pad"]

Callback = Callable[[int, torch.Tensor], None]
"""``callback(step, canvas)`` after every step."""


def left_pad(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, *, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-pad a batch of prompts on the left: ``(ids, mask)``, real tokens flush right."""
    if input_ids.dim() != 2:
        raise SampleError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return input_ids, torch.ones_like(input_ids, dtype=torch.bool)
    keep = attention_mask.bool()
    rows = [input_ids[row][keep[row]].cpu() for row in range(input_ids.shape[0])]
    ids, mask = pad_rows(rows, pad_token_id, side="left")
    return ids.to(input_ids.device, input_ids.dtype), mask.bool().to(input_ids.device)


def _prepare(
    model: torch.nn.Module | MaskedLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    pad_token_id: int,
    execution: Execution | None = None,
) -> tuple[MaskedLM, torch.Tensor, torch.Tensor]:
    """``(MaskedLM, ids, mask)``: the model wrapped, the batch on its device, left-padded."""
    lm = model if isinstance(model, MaskedLM) else MaskedLM(model, execution=execution)
    mask = None if attention_mask is None else attention_mask.to(lm.device)
    ids, mask = left_pad(input_ids.to(lm.device), mask, pad_token_id=pad_token_id)
    return lm, ids, mask


def _check_fits(lm: MaskedLM, attention: torch.Tensor, extra: int) -> None:
    longest = int(attention.sum(1).max()) + extra if attention.numel() else extra
    check_fits(longest, lm.max_positions)


def _run(engine: Engine, width: int, callback: Callback | None) -> torch.Tensor:
    """Step ``engine`` until every request is filled; the canvases left-padded to ``width``
    (requests in the order they were added), shown to ``callback`` after every pass."""
    device = engine.lm.device

    def canvas() -> torch.Tensor:
        rows = [r.canvas for r in engine.requests.values()]
        return pad_rows(rows, engine.pad_token_id, side="left", width=width)[0].to(device)

    while engine.busy:
        before = engine.passes
        for event in engine.step():
            if event.error is not None:
                raise SampleError(event.error)
        if callback is not None and engine.passes > before:
            callback(engine.passes, canvas())
    return canvas()


@torch.no_grad()
def generate(
    model: torch.nn.Module | MaskedLM,
    input_ids: torch.Tensor,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    execution: Execution | None = None,
) -> torch.Tensor:
    """Generate ``config.max_new_tokens`` tokens after each prompt by iterative unmasking.

    Args:
        model: a Hugging Face masked LM (e.g. ``ModernBertForMaskedLM``) or a :class:`MaskedLM`.
        input_ids: ``(B, P)`` prompts; rows of different lengths are padded and ``attention_mask``
            marks the real tokens (either side; they are re-padded on the left).
        config: the sampler settings; ``threshold=None`` is the reference sampler.
        mask_token_id: the model's mask id. ``eos_token_id`` is exempt from the repetition
            penalty; ``pad_token_id`` fills the left padding of the returned canvas.
        generator: for Gumbel noise and random remasking, on the model's device.
        callback: ``callback(step, canvas)`` after every step (the canvas is live: copy to keep).
        execution: how a Hugging Face ``model`` runs (``Execution(compile=True)``: the compiled
            step on CUDA); a :class:`MaskedLM` brings its own.

    Returns:
        ``(B, P' + max_new_tokens)`` canvas, untrimmed: left-padded prompt, then the new tokens.
    """
    lm, prompt, prompt_mask = _prepare(model, input_ids, attention_mask, pad_token_id, execution)
    _check_fits(lm, prompt_mask, config.max_new_tokens)
    engine = Engine(lm, mask_token_id, eos_token_id, pad_token_id)
    for row in range(len(prompt)):
        engine.add(row, prompt[row][prompt_mask[row]], config, generator=generator)
    return _run(engine, prompt.shape[1] + config.max_new_tokens, callback)


@torch.no_grad()
def infill(
    model: torch.nn.Module | MaskedLM,
    input_ids: torch.Tensor,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = 0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    execution: Execution | None = None,
) -> torch.Tensor:
    """Fill mask tokens placed anywhere in ``input_ids``; every other token stays as it is.

    The sequence is cut into windows of ``block_length`` positions, filled left to right; each
    window holding masks gets the per-block step budget ``steps / (max_new_tokens / block_length)``
    of ``config``. Guidance hides every given (non-mask) token. The mask is never written into the
    text, nor is ``pad_token_id`` when it is a padding id of its own (give None where the
    tokenizer has none; it must differ from ``eos_token_id``). Returns the left-padded canvas.
    """
    pad_value = pad_token_id if pad_token_id is not None else 0
    lm, canvas, attention = _prepare(model, input_ids, attention_mask, pad_value, execution)
    _check_fits(lm, attention, 0)
    engine = Engine(lm, mask_token_id, eos_token_id, pad_value)
    for row in range(len(canvas)):
        text = canvas[row][attention[row]]
        engine.add_infill(row, text, config, generator=generator, pad_token_id=pad_token_id)
    return _run(engine, canvas.shape[1], callback)
