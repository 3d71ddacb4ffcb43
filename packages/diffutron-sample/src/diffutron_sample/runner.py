"""The engine's runner: executes a :class:`~diffutron_sample.scheduler.StepPlan` as one forward
pass, then proposes, selects commits and applies early stop for every row at once on the device
(docs/sampling.md#step-level-engine). It reads back once per step: the committed positions, the
rows early stop ended and the rows whose logits were not finite, whatever the batch size (the
adaptive cache refresh reads its drifts once more, the whole batch's at once).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from diffutron_sample.acceptance import Tracer, decide, measures_for
from diffutron_sample.commits import select_commits, spread
from diffutron_sample.masked_lm import MaskedLM
from diffutron_sample.proposals import Batch, Entries, propose
from diffutron_sample.scheduler import NOT_FINITE, StepOutput, StepPlan

__all__ = ["Runner", "end_early", "select_commits"]
from diffutron_sample.slots import CanvasSlots


def end_early(
    canvas: torch.Tensor,
    answer: torch.Tensor,
    stops: torch.Tensor,
    ends: torch.Tensor,
    *,
    mask_token_id: int,
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Early stop for the rows ``stops`` (B,): once a row's ``answer`` columns (B, W) hold a
    committed end token (an id of ``ends``) with no mask before it, its remaining masks become
    pad. ``(canvas, ended)``."""
    masks = (canvas == mask_token_id) & answer
    is_end = torch.isin(canvas, ends) & answer
    width = canvas.shape[1]
    columns = torch.arange(width, device=canvas.device)
    first_end = torch.where(is_end, columns, width).amin(dim=1)
    first_mask = torch.where(masks, columns, width).amin(dim=1)
    ended = stops & (first_end < width) & (first_mask > first_end) & masks.any(dim=1)
    return canvas.masked_fill(ended[:, None] & masks, pad_token_id), ended


class _Rows(NamedTuple):
    """A pass's rows, ``(B,)`` each: their slots, left padding, commit counts, first answer
    columns (in the padded batch) and whether early stop applies."""

    slots: torch.Tensor
    offset: torch.Tensor
    counts: torch.Tensor
    answer: torch.Tensor
    stops: torch.Tensor


class Runner:
    """Runs plans on ``lm`` over the canvases in ``slots``."""

    def __init__(
        self,
        lm: MaskedLM,
        slots: CanvasSlots,
        *,
        mask_token_id: int,
        eos_token_id: int | None,
        pad_token_id: int,
    ):
        self.lm, self.slots = lm, slots
        self.mask_token_id, self.eos_token_id, self.pad_token_id = (
            mask_token_id,
            eos_token_id,
            pad_token_id,
        )
        ends = [i for i in (eos_token_id, pad_token_id) if i is not None]
        self.ends = torch.tensor(ends, device=slots.device)
        self.tracer: Tracer | None = None
        """Called with every candidate's features after each pass (``diffutron-train
        policy``)."""

    def _batch(self, plan: StepPlan) -> tuple[Batch, _Rows]:
        """The pass's :class:`Batch` and its rows' values on the device, which reach it as one
        tensor."""
        requests = plan.requests
        width = max(r.length for r in requests)
        table = [
            (
                r.slot,
                width - r.length,
                *r.blocks[r.block],
                r.drawn or 0,
                r.start,
                r.stops,
            )
            for r in requests
        ]
        host = torch.tensor(table, dtype=torch.long).T.to(self.slots.device)
        slots, offset, start, end, counts, answer, stops = host
        canvas, given = self.slots.gather(slots, width)
        columns = torch.arange(width, device=canvas.device)
        inside = (columns >= (start + offset)[:, None]) & (columns < (end + offset)[:, None])
        batch = Batch(
            canvas,
            columns >= offset[:, None],
            given,
            (canvas == self.mask_token_id) & inside,
            [r.config for r in requests],
            [r.never for r in requests],
            [r.generator for r in requests],
            plan.spans,
            plan.uncond_spans,
            entries=[r.remaining[r.block] for r in requests],
        )
        return batch, _Rows(slots, offset, counts, answer + offset, stops.bool())

    def execute(self, plan: StepPlan) -> StepOutput:
        """One forward pass over the plan's rows; their canvases are updated in place."""
        batch, rows = self._batch(plan)
        requests = plan.requests
        entries = Entries()
        scores, chosen, finite = propose(
            self.lm,
            batch,
            mask_token_id=self.mask_token_id,
            eos_token_id=self.eos_token_id,
            measure=measures_for(requests, self.tracer is not None),
            entries=entries,
        )
        width = batch.canvas.shape[1]
        decision = decide(
            requests,
            scores,
            entries,
            [width - r.length for r in requests],
            policy=self.lm.commit_policy,
            tracer=self.tracer,
        )
        some_counted = any(r.config.rule is None for r in requests)  # else the best by argmax
        commit = select_commits(
            scores, rows.counts, decision.thresholds, decision.accepted, counted=some_counted
        )
        if any(r.config.dilation > 1 for r in requests):
            dilation = torch.tensor([r.config.dilation for r in requests]).to(scores.device)
            counted = torch.isnan(decision.thresholds)
            depth = max(batch.entries or [width])
            commit = spread(commit, scores, rows.counts, dilation, counted, depth)
        commit &= finite[:, None]
        canvas = torch.where(commit, chosen, batch.canvas)
        if any(r.stops for r in requests):  # the host knows: no work for rows without it
            columns = torch.arange(canvas.shape[1], device=canvas.device)
            canvas, ended = end_early(
                canvas,
                columns >= rows.answer[:, None],
                rows.stops,
                self.ends,
                mask_token_id=self.mask_token_id,
                pad_token_id=self.pad_token_id,
            )
        else:
            ended = torch.zeros(len(requests), dtype=torch.bool, device=canvas.device)
        pairs = commit.nonzero()  # (K, 2) row, column: the step's one read of positions
        pairs[:, 1] -= rows.offset[pairs[:, 0]]
        flags = torch.stack([ended, ~finite]).long()
        back = torch.cat([pairs.reshape(-1), flags.reshape(-1)]).tolist()
        self.slots.write(rows.slots, canvas)
        return _unpack(back, len(requests))


def _unpack(values: list[int], rows: int) -> StepOutput:
    """The read-back vector (row, column pairs, then each row's ended and failed flags) as a
    :class:`StepOutput`."""
    pairs, flags = values[: -2 * rows], values[-2 * rows :]
    committed: list[list[int]] = [[] for _ in range(rows)]
    for row, column in zip(pairs[0::2], pairs[1::2], strict=True):
        committed[row].append(column)
    ended = [bool(v) for v in flags[:rows]]
    failed = [NOT_FINITE if v else None for v in flags[rows:]]
    return StepOutput(committed, ended, failed)
