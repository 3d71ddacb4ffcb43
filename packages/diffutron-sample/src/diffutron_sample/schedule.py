"""When each masked position of a request is committed: LLaDA's per-block transfer schedule
(docs/sampling.md#transfer-counts), or confidence-threshold decoding
(docs/sampling.md#threshold-decoding).

Every request walks its own blocks left to right, whatever else shares its batch:
:func:`next_candidates` says which of its positions the next forward pass proposes for and how
many of them it commits, skipping the steps that would commit nothing (a request alone takes
exactly the passes it would take in any batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from diffutron_core import transfer_counts
from diffutron_sample.config import SamplerConfig


@dataclass
class Cursor:
    """Where a request's schedule stands: its ``blocks`` (column ranges of its own canvas, filled
    left to right), the current block and step in it, and that block's planned counts."""

    blocks: list[tuple[int, int]]
    block: int = 0
    step: int = 0
    planned: torch.Tensor | None = field(default=None, repr=False)


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


def _commit_count(
    remaining: int,
    planned: int,
    steps_left: int,
    config: SamplerConfig,
    generator: torch.Generator | None,
) -> int:
    """How many masks a request commits this step: the schedule's ``planned`` count, or with
    ``stochastic_transfer`` a binomial draw of ``remaining`` (all of it at the last step)."""
    if not config.stochastic_transfer:
        return planned
    if steps_left == 1:
        return remaining
    draw = torch.binomial(
        torch.tensor([float(remaining)], dtype=torch.float64),
        torch.tensor([1 / steps_left], dtype=torch.float64),
        generator=generator,
    )
    return int(draw.item())


def _scheduled(
    canvas: torch.Tensor,
    cursor: Cursor,
    config: SamplerConfig,
    mask_token_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, int] | None:
    """The reference schedule: each block gets ``steps / num_blocks`` steps, each committing the
    count :func:`~diffutron_core.transfer_counts` plans for the block (or a binomial draw)."""
    steps_per_block = config.steps // config.num_blocks
    while cursor.block < len(cursor.blocks):
        start, end = cursor.blocks[cursor.block]
        masks = canvas[start:end] == mask_token_id
        if cursor.planned is None:
            cursor.planned = transfer_counts(int(masks.sum()), steps_per_block)
        if cursor.step >= steps_per_block or not bool(masks.any()):
            cursor.block, cursor.step, cursor.planned = cursor.block + 1, 0, None
            continue
        planned = int(cursor.planned[cursor.step])
        count = _commit_count(
            int(masks.sum()), planned, steps_per_block - cursor.step, config, generator
        )
        cursor.step += 1
        if count > 0:
            return _spread(masks, start, len(canvas)), count
    return None


def _spread(masks: torch.Tensor, start: int, width: int) -> torch.Tensor:
    """A block's mask flags as flags over the whole canvas."""
    candidates = torch.zeros(width, dtype=torch.bool, device=masks.device)
    candidates[start : start + len(masks)] = masks
    return candidates


def next_candidates(
    canvas: torch.Tensor,
    cursor: Cursor,
    config: SamplerConfig,
    mask_token_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int | None] | None:
    """``(candidates, count)`` of a request's next pass: the (L,) positions it proposes for and
    how many it commits (``None`` in threshold decoding: those at or above the threshold, at
    least one); ``None`` when every block is filled."""
    if config.threshold is None:
        return _scheduled(canvas, cursor, config, mask_token_id, generator)
    while cursor.block < len(cursor.blocks):  # threshold: the first block that still has masks
        start, end = cursor.blocks[cursor.block]
        masks = canvas[start:end] == mask_token_id
        if bool(masks.any()):
            return _spread(masks, start, len(canvas)), None
        cursor.block += 1
    return None
