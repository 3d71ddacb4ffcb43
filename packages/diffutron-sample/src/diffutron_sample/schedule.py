"""When each masked position is committed: LLaDA's per-block transfer schedule
(docs/sampling.md#transfer-counts), or confidence-threshold decoding
(docs/sampling.md#threshold-decoding).

Both walk the blocks left to right and call a ``step(candidates, start, end, counts)`` that runs
one forward pass over the masked ``candidates`` of columns ``start:end`` and commits what
:func:`select_commits` picks from its proposals.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffutron_core import transfer_counts
from diffutron_sample.config import SamplerConfig

Step = Callable[[torch.Tensor, int, int, torch.Tensor | None], None]
"""``step(candidates, start, end, counts)``: one forward pass and its commits; ``counts`` is
``None`` in threshold decoding."""


def select_commits(
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


def _commit_counts(
    remaining: torch.Tensor,
    planned: torch.Tensor,
    steps_left: int,
    config: SamplerConfig,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """How many masks each row commits this step: the schedule's ``planned`` count, or with
    ``stochastic_transfer`` a binomial draw of ``remaining`` (all of it at the last step)."""
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


def fill_by_schedule(
    canvas: torch.Tensor,
    blocks: list[tuple[int, int]],
    config: SamplerConfig,
    step: Step,
    *,
    mask_token_id: int,
    generator: torch.Generator | None,
) -> None:
    """The reference sampler: each block gets ``steps / num_blocks`` steps, each committing the
    count :func:`~diffutron_core.transfer_counts` plans (or a binomial draw); a step where no
    row commits anything is skipped, as its pass would change nothing."""
    steps_per_block = config.steps // config.num_blocks
    for start, end in blocks:
        block_masks = canvas[:, start:end] == mask_token_id  # (B, W)
        planned = transfer_counts(block_masks.sum(1), steps_per_block).to(canvas.device)  # (B, S)
        for j in range(steps_per_block):
            candidates = canvas[:, start:end] == mask_token_id  # (B, W)
            remaining = candidates.sum(1)
            counts = _commit_counts(
                remaining, planned[:, j], steps_per_block - j, config, generator
            )
            if bool(counts.any()):
                step(candidates, start, end, counts)


def fill_by_threshold(
    canvas: torch.Tensor, blocks: list[tuple[int, int]], step: Step, *, mask_token_id: int
) -> None:
    """Confidence-threshold decoding where each row moves to its next block as soon as its
    current one is filled, so an easy row never waits for a hard one in the same batch (the
    blocks stay left to right within a row; a row alone decodes exactly as before)."""
    if not blocks:  # an infill without masks: nothing to do
        return
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
            return
        step(candidates, first, last, None)
