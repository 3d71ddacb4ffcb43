"""Iterative unmasking: LLaDA's / dLLM's reference sampler, and confidence-threshold fast decoding.

The canvas is the prompt (left-padded across a batch, positions counted from each row's first
token, so a row gives the same tokens as it would alone) followed by ``max_new_tokens`` masks.
Blocks of ``block_length`` are filled left to right. Each step runs the backbone once over the
whole canvas (twice the batch with guidance) and the output layer only at the still-masked
positions of the active block, the only logits the algorithm reads (docs/sampling.md#one-step): the
proposals come from :class:`~diffutron_sample.proposals.Proposer`, and which of them a step
commits from :mod:`diffutron_sample.schedule`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from diffutron_core import pad_rows
from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.model import MaskedLM
from diffutron_sample.proposals import Proposer
from diffutron_sample.schedule import fill_by_schedule, fill_by_threshold, select_commits

__all__ = ["Callback", "generate", "infill", "left_pad"]

Callback = Callable[[int, torch.Tensor], None]
"""``callback(step, canvas)`` after every step."""
Finish = Callable[[torch.Tensor], None]
"""``finish(canvas)`` after every step's commits, before the callback (early stop)."""


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


def _finish_rows(
    canvas: torch.Tensor,
    start: int,
    stop_ids: torch.Tensor,
    *,
    mask_token_id: int,
    pad_token_id: int,
) -> None:
    """Early stop: rows whose generated part holds a committed end token with no mask before it
    get pad in every remaining mask (in place)."""
    region = canvas[:, start:]
    masks = region == mask_token_id
    index = torch.arange(region.shape[1], device=canvas.device).expand_as(region)
    ends = torch.isin(region, stop_ids)
    first_end = torch.where(ends, index, region.shape[1]).min(dim=1).values  # (B,)
    first_mask = torch.where(masks, index, region.shape[1]).min(dim=1).values
    done = (first_end < region.shape[1]) & (first_end < first_mask)
    region[masks & done[:, None]] = pad_token_id


def _early_stop(
    start: int,
    device: torch.device,
    *,
    mask_token_id: int,
    eos_token_id: int | None,
    pad_token_id: int,
) -> Finish:
    """``finish(canvas)`` for ``early_stop``: :func:`_finish_rows` over the columns from
    ``start``, with the eos and pad ids as end tokens."""
    ends = [i for i in (eos_token_id, pad_token_id) if i is not None]
    return partial(
        _finish_rows,
        start=start,
        stop_ids=torch.tensor(ends, device=device),
        mask_token_id=mask_token_id,
        pad_token_id=pad_token_id,
    )


def _denoise(
    canvas: torch.Tensor,
    blocks: list[tuple[int, int]],
    propose: Proposer,
    *,
    callback: Callback | None,
    finish: Finish | None = None,
) -> torch.Tensor:
    """Fill the masks of ``blocks`` (column ranges of ``canvas``, in place) as
    ``propose.config`` says: by the reference schedule, or by the confidence threshold."""
    config = propose.config
    steps = 0

    def step(candidates, start: int, end: int, counts) -> None:
        """One forward pass: propose for ``candidates`` (columns ``start:end``), commit what
        the schedule or threshold allows, then early stop and the callback."""
        nonlocal steps
        scores, chosen = propose(canvas, candidates, start)
        commit = select_commits(scores, counts, config.threshold)
        canvas[:, start:end] = torch.where(commit, chosen, canvas[:, start:end])
        if finish is not None:
            finish(canvas)
        steps += 1
        if callback is not None:
            callback(steps, canvas)

    mask_token_id = propose.mask_token_id
    if config.threshold is not None:
        fill_by_threshold(canvas, blocks, step, mask_token_id=mask_token_id)
    else:
        fill_by_schedule(
            canvas, blocks, config, step, mask_token_id=mask_token_id, generator=propose.generator
        )
    return canvas


def _prepare(model, input_ids, attention_mask, pad_token_id):
    """``(MaskedLM, ids, mask)``: the model wrapped, the batch on its device, left-padded."""
    lm = model if isinstance(model, MaskedLM) else MaskedLM(model)
    mask = None if attention_mask is None else attention_mask.to(lm.device)
    ids, mask = left_pad(input_ids.to(lm.device), mask, pad_token_id=pad_token_id)
    return lm, ids, mask


def _check_fits(lm: MaskedLM, attention: torch.Tensor, extra: int) -> None:
    limit = lm.max_positions
    longest = int(attention.sum(1).max()) + extra if attention.numel() else extra
    if limit is not None and longest > limit:
        raise SampleError(
            f"prompt and generation need {longest} positions but the model has {limit}; "
            "shorten the prompt or lower max_new_tokens"
        )


def _append_masks(
    prompt: torch.Tensor, prompt_mask: torch.Tensor, config: SamplerConfig, mask_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """``(canvas, attention, given, blocks)``: the left-padded prompts then ``max_new_tokens``
    masks, the real positions, the prompt tokens (which guidance hides), and the blocks of the
    generated part."""
    batch, width = prompt.shape
    masks = torch.full(
        (batch, config.max_new_tokens), mask_token_id, dtype=prompt.dtype, device=prompt.device
    )
    canvas = torch.cat([prompt, masks], dim=1)
    attention = torch.cat([prompt_mask, torch.ones_like(masks, dtype=torch.bool)], dim=1)
    given = torch.cat([prompt_mask, torch.zeros_like(masks, dtype=torch.bool)], dim=1)
    blocks = [
        (width + b * config.block_length, width + (b + 1) * config.block_length)
        for b in range(config.num_blocks)
    ]
    return canvas, attention, given, blocks


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
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

    Returns:
        ``(B, P' + max_new_tokens)`` canvas, untrimmed: left-padded prompt, then the new tokens.
    """
    lm, prompt, prompt_mask = _prepare(model, input_ids, attention_mask, pad_token_id)
    _check_fits(lm, prompt_mask, config.max_new_tokens)
    canvas, attention, given, blocks = _append_masks(prompt, prompt_mask, config, mask_token_id)
    finish = None
    if config.early_stop:
        finish = _early_stop(
            prompt.shape[1],
            lm.device,
            mask_token_id=mask_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
    propose = Proposer(lm, attention, given, config, mask_token_id, eos_token_id, generator)
    return _denoise(canvas, blocks, propose, callback=callback, finish=finish)


@torch.no_grad()
def infill(
    model,
    input_ids: torch.Tensor,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = 0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Fill mask tokens placed anywhere in ``input_ids``; every other token stays as it is.

    The sequence is cut into windows of ``block_length`` positions, filled left to right; each
    window holding masks gets the per-block step budget ``steps / (max_new_tokens / block_length)``
    of ``config``. Guidance hides every given (non-mask) token. The mask is never written into the
    text, nor is ``pad_token_id`` when it is a padding id of its own (give None where the
    tokenizer has none; it must differ from ``eos_token_id``). Returns the left-padded canvas.
    """
    pad_value = pad_token_id if pad_token_id is not None else 0
    lm, canvas, attention = _prepare(model, input_ids, attention_mask, pad_value)
    _check_fits(lm, attention, 0)
    canvas = canvas.clone()
    masked = (canvas == mask_token_id) & attention
    width = canvas.shape[1]
    blocks = [
        (start, min(start + config.block_length, width))
        for start in range(0, width, config.block_length)
        if masked[:, start : start + config.block_length].any()
    ]
    forbidden = () if pad_token_id is None or pad_token_id == eos_token_id else (pad_token_id,)
    propose = Proposer(
        lm,
        attention,
        attention & ~masked,
        config,
        mask_token_id,
        eos_token_id,
        generator,
        forbidden,
    )
    return _denoise(canvas, blocks, propose, callback=callback)
