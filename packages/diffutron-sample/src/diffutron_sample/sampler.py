"""Iterative unmasking: LLaDA's / dLLM's reference sampler, and confidence-threshold fast decoding.

The canvas is the prompt (left-padded across a batch, positions counted from each row's first
token, so a row gives the same tokens as it would alone) followed by ``max_new_tokens`` masks.
Blocks of ``block_length`` are filled left to right. Each step runs the backbone once over the
whole canvas (twice the batch with guidance) and the output layer only at the still-masked
positions of the active block, the only logits the algorithm reads (REFERENCE §3, §4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffutron_core import gumbel_argmax, transfer_counts
from diffutron_sample.config import SampleError, SamplerConfig
from diffutron_sample.model import MaskedLM

Callback = Callable[[int, torch.Tensor], None]


def left_pad(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, *, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-pad a batch of prompts on the left: ``(ids, mask)``, real tokens flush right."""
    if input_ids.dim() != 2:
        raise SampleError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return input_ids, torch.ones_like(input_ids, dtype=torch.bool)
    keep = attention_mask.bool()
    width = int(keep.sum(1).max()) if keep.numel() else 0
    ids = torch.full(
        (input_ids.shape[0], width), pad_token_id, dtype=input_ids.dtype, device=input_ids.device
    )
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row in range(input_ids.shape[0]):
        tokens = input_ids[row][keep[row]]
        if len(tokens):
            ids[row, width - len(tokens) :] = tokens
            mask[row, width - len(tokens) :] = True
    return ids, mask


def apply_repetition_penalty(
    logits: torch.Tensor, rows: torch.Tensor, present: torch.Tensor, penalty: float
) -> torch.Tensor:
    """HF-style penalty: for every id ``present`` in the row's canvas, divide a positive logit by
    ``penalty`` and multiply a negative one.

    ``logits`` (M, V) of rows ``rows`` (M,) of the batch; ``present`` (B, V).
    """
    hit = present[rows]  # (M, V)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(hit, penalised, logits)


def _present_ids(canvas, attention, vocab_size, *, mask_token_id, eos_token_id) -> torch.Tensor:
    """(B, V) bool: ids on each row's canvas, except padding, the mask and the eos id."""
    use = attention & (canvas != mask_token_id)
    if eos_token_id is not None:
        use &= canvas != eos_token_id
    present = torch.zeros(canvas.shape[0], vocab_size, dtype=torch.bool, device=canvas.device)
    rows = torch.arange(canvas.shape[0], device=canvas.device)[:, None].expand_as(canvas)
    present[rows[use], canvas[use]] = True
    return present


def _confidence(
    logits: torch.Tensor, x0: torch.Tensor, config: SamplerConfig, generator
) -> torch.Tensor:
    """Softmax probability of the chosen token, ``exp(logit[x0] - logsumexp(logits))``, in float32
    on the given rows only (REFERENCE §4: never a (B, L, V) float64 softmax), or uniform random
    scores for ``remasking="random"``. Returned as float64 scores for ranking."""
    if config.remasking == "random":
        return torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64)
    chosen = logits.gather(1, x0[:, None])[:, 0]
    return (chosen - torch.logsumexp(logits, dim=1)).exp().double()


def _commit_counts(
    remaining: torch.Tensor, planned: torch.Tensor, steps_left: int, config, generator
):
    if not config.stochastic_transfer:
        return planned
    if steps_left == 1:
        return remaining
    draws = torch.binomial(
        remaining.double(),
        torch.full_like(remaining, 1 / steps_left, dtype=torch.float64),
        generator=generator,
    )
    return draws.long()


def _select(
    scores: torch.Tensor, counts: torch.Tensor | None, threshold: float | None
) -> torch.Tensor:
    """(B, W) bool: the ``counts[b]`` best scores of each row, or (threshold mode) every score at or
    above the threshold plus each row's best. ``-inf`` marks positions that cannot be chosen."""
    valid = scores > float("-inf")
    if threshold is not None:
        best = torch.zeros_like(valid)
        best.scatter_(1, scores.argmax(dim=1, keepdim=True), True)
        return valid & ((scores >= threshold) | best)
    order = scores.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return valid & (ranks < counts[:, None])


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


def _proposals(
    lm: MaskedLM,
    canvas: torch.Tensor,
    attention: torch.Tensor,
    positions: torch.Tensor,
    given: torch.Tensor,
    candidates: torch.Tensor,
    start: int,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    eos_token_id: int | None,
    generator: torch.Generator | None,
    forbidden: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: ``(scores, tokens)`` of shape ``candidates`` (``(B, W)``, columns from
    ``start``): each candidate's proposed token ``x0`` (after guidance and the repetition
    penalty; never one of the ``forbidden`` ids) and its confidence under the full softmax;
    ``-inf`` where nothing may be chosen."""
    rows, cols = candidates.nonzero(as_tuple=True)
    where = (rows, cols + start)
    if config.cfg_scale > 0:
        batch = torch.cat([canvas, canvas.masked_fill(given, mask_token_id)])
        states = lm.hidden(batch, attention.repeat(2, 1), positions.repeat(2, 1))
        cond = lm.logits_at(states[: len(canvas)], where)
        uncond = lm.logits_at(states[len(canvas) :], where)
        logits = uncond + (config.cfg_scale + 1) * (cond - uncond)
    else:
        logits = lm.logits_at(lm.hidden(canvas, attention, positions), where)  # (M, V)
    if config.repetition_penalty != 1.0:
        present = _present_ids(
            canvas,
            attention,
            logits.shape[1],
            mask_token_id=mask_token_id,
            eos_token_id=eos_token_id,
        )
        logits = apply_repetition_penalty(logits, rows, present, config.repetition_penalty)
    if not bool(torch.isfinite(torch.logsumexp(logits, dim=1)).all()):
        raise SampleError(
            "the model's logits are not finite (NaN or inf); run it in float32 (--dtype "
            "float32) or with milder cfg_scale / repetition_penalty"
        )
    # Never propose a forbidden id (the mask: committing it would leave a hole in the answer).
    # The confidence stays that of the full softmax, so whenever the reference would not choose
    # a forbidden id, the choice and the ranking are exactly the reference's.
    allowed = logits.index_fill(1, forbidden, float("-inf"))
    x0 = gumbel_argmax(allowed, config.temperature, generator=generator)  # (M,)
    scores = torch.full(candidates.shape, float("-inf"), dtype=torch.float64, device=canvas.device)
    scores[rows, cols] = _confidence(logits, x0, config, generator)
    chosen = torch.zeros_like(candidates, dtype=torch.long)
    chosen[rows, cols] = x0
    return scores, chosen


def _denoise_threshold(
    canvas: torch.Tensor,
    blocks: list[tuple[int, int]],
    *,
    mask_token_id: int,
    commit_step: Callable[[torch.Tensor, int, int, torch.Tensor | None], None],
) -> torch.Tensor:
    """Confidence-threshold decoding where each row moves to its next block as soon as its
    current one is filled, so an easy row never waits for a hard one in the same batch (the
    blocks stay left to right within a row; a row alone decodes exactly as before)."""
    first, last = blocks[0][0], blocks[-1][1]
    bounds = torch.tensor(blocks, device=canvas.device) - first  # (K, 2)
    index = torch.arange(last - first, device=canvas.device)
    current = torch.zeros(canvas.shape[0], dtype=torch.long, device=canvas.device)
    while True:
        masks = canvas[:, first:last] == mask_token_id  # (B, N)
        while True:  # advance every row past its filled blocks
            live = current < len(blocks)
            span = bounds[current.clamp(max=len(blocks) - 1)]  # (B, 2)
            active = (index >= span[:, :1]) & (index < span[:, 1:]) & live[:, None]
            filled = live & ~(masks & active).any(1)
            if not bool(filled.any()):
                break
            current = current + filled.long()
        candidates = masks & active
        if not bool(candidates.any()):
            return canvas
        commit_step(candidates, first, last, None)


def _denoise(
    lm: MaskedLM,
    canvas: torch.Tensor,
    attention: torch.Tensor,
    given: torch.Tensor,
    blocks: list[tuple[int, int]],
    steps_per_block: int,
    config: SamplerConfig,
    *,
    mask_token_id: int,
    eos_token_id: int | None,
    generator: torch.Generator | None,
    callback: Callback | None,
    finish: Callable[[torch.Tensor], None] | None = None,
    forbidden: tuple[int, ...] = (),
) -> torch.Tensor:
    """Fill the masks of each block in turn; ``given`` marks the tokens guidance hides;
    ``finish(canvas)`` runs after every step (early stop); the mask id and ``forbidden`` ids are
    never committed."""
    positions = (attention.long().cumsum(1) - 1).clamp(min=0)
    never = torch.tensor(sorted({mask_token_id, *forbidden}), device=canvas.device)
    step = 0

    def commit_step(candidates, start: int, end: int, counts) -> None:
        """One forward pass: propose for ``candidates`` (columns ``start:end``), commit what
        the schedule or threshold allows, then early stop and the callback."""
        nonlocal step
        scores, chosen = _proposals(
            lm,
            canvas,
            attention,
            positions,
            given,
            candidates,
            start,
            config,
            mask_token_id=mask_token_id,
            eos_token_id=eos_token_id,
            generator=generator,
            forbidden=never,
        )
        commit = _select(scores, counts, config.threshold)
        canvas[:, start:end] = torch.where(commit, chosen, canvas[:, start:end])
        if finish is not None:
            finish(canvas)
        step += 1
        if callback is not None:
            callback(step, canvas)

    if config.threshold is not None:
        return _denoise_threshold(
            canvas, blocks, mask_token_id=mask_token_id, commit_step=commit_step
        )
    for start, end in blocks:
        block_masks = canvas[:, start:end] == mask_token_id  # (B, W)
        planned = transfer_counts(block_masks.sum(1), steps_per_block).to(canvas.device)  # (B, S)
        for j in range(steps_per_block):
            candidates = canvas[:, start:end] == mask_token_id  # (B, W)
            remaining = candidates.sum(1)
            counts = _commit_counts(
                remaining, planned[:, j], steps_per_block - j, config, generator
            )
            if not bool(counts.any()):
                continue  # nothing to commit in any row: the pass would change nothing
            commit_step(candidates, start, end, counts)
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
    device = lm.device
    batch, width = prompt.shape
    masks = torch.full(
        (batch, config.max_new_tokens), mask_token_id, dtype=prompt.dtype, device=device
    )
    canvas = torch.cat([prompt, masks], dim=1)
    attention = torch.cat([prompt_mask, torch.ones_like(masks, dtype=torch.bool)], dim=1)
    given = torch.cat([prompt_mask, torch.zeros_like(masks, dtype=torch.bool)], dim=1)
    blocks = [
        (width + b * config.block_length, width + (b + 1) * config.block_length)
        for b in range(config.num_blocks)
    ]
    finish = None
    if config.early_stop:
        ends = torch.tensor(
            [i for i in (eos_token_id, pad_token_id) if i is not None], device=device
        )

        def finish(canvas):
            _finish_rows(
                canvas, width, ends, mask_token_id=mask_token_id, pad_token_id=pad_token_id
            )

    return _denoise(
        lm,
        canvas,
        attention,
        given,
        blocks,
        config.steps // config.num_blocks,
        config,
        mask_token_id=mask_token_id,
        eos_token_id=eos_token_id,
        generator=generator,
        callback=callback,
        finish=finish,
    )


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
    return _denoise(
        lm,
        canvas,
        attention,
        attention & ~masked,
        blocks,
        config.steps // config.num_blocks,
        config,
        mask_token_id=mask_token_id,
        eos_token_id=eos_token_id,
        generator=generator,
        callback=callback,
        forbidden=() if pad_token_id is None or pad_token_id == eos_token_id else (pad_token_id,),
    )
