"""Which proposals a step commits, for every row at once on the device: the reference schedule's
count, a parallel rule's acceptance (docs/sampling.md#commit-policies), and the dilated spread.
Scores are ``(B, W)`` confidences with ``-inf`` where nothing may be chosen; one stable sort
ranks them, so ties go to the leftmost position, as in the reference."""

from __future__ import annotations

import torch


def ranks_of(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(order, ranks)``: the columns by descending score (stable) and each column's rank."""
    order = scores.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return order, ranks


def select_commits(
    scores: torch.Tensor,
    counts: torch.Tensor,
    thresholds: torch.Tensor,
    accepted: torch.Tensor | None = None,
    *,
    counted: bool = True,
) -> torch.Tensor:
    """(B, W) bool: each row's ``counts[b]`` best scores; or, for a row whose ``thresholds[b]`` is
    not NaN (a parallel rule), its best score, every score at or above the threshold, and every
    position its rule ``accepted`` (``+inf`` thresholds a row whose rule is not the
    confidence's). One sort over the padded batch, no loop over rows. ``counted=False`` (the
    host knows that no row is ruled by its count) finds each row's best by ``argmax`` instead of
    the sort: its first maximum, which is the stable sort's first."""
    valid = scores > float("-inf")
    if not counted:
        columns = torch.arange(scores.shape[1], device=scores.device)
        best = columns == scores.argmax(dim=1, keepdim=True)
        by_rule = (scores >= thresholds[:, None]) | best
        return valid & (by_rule if accepted is None else by_rule | accepted)
    _, ranks = ranks_of(scores)
    by_count = ranks < counts[:, None]
    by_rule = (scores >= thresholds[:, None]) | (ranks == 0)
    if accepted is not None:
        by_rule |= accepted
    use_rule = ~torch.isnan(thresholds)[:, None]
    return valid & torch.where(use_rule, by_rule, by_count)


def entropy_accepts(
    scores: torch.Tensor, entropy: torch.Tensor, bounds: torch.Tensor
) -> torch.Tensor:
    """The EB-sampler's rule, (B, W) bool: in order of confidence, the positions whose entropies
    summed, less the largest of them, stay below the row's bound (NaN: none). That quantity
    never falls as positions are added, so the accepted ones are the best ranks."""
    order, _ = ranks_of(scores)
    spent = entropy.gather(1, order)
    spent = spent.cumsum(dim=1) - spent.cummax(dim=1).values
    accepted = torch.zeros_like(scores, dtype=torch.bool)
    return accepted.scatter_(1, order, spent < bounds[:, None])


def spread(
    commit: torch.Tensor,
    scores: torch.Tensor,
    counts: torch.Tensor,
    dilation: torch.Tensor,
    counted: torch.Tensor,
    depth: int,
) -> torch.Tensor:
    """Dilated commits, (B, W) bool: for each row with ``dilation[b] > 1``, its chosen positions
    taken in order of confidence, each at least the row's dilation from those already taken;
    a row ruled by its count (``counted``) takes its ``counts[b]`` from every position it may
    commit, and tops up with the best left when spacing alone falls short. ``depth`` bounds the
    candidates of a row (the positions ranked past it are never chosen)."""
    order, _ = ranks_of(scores)
    valid = scores > float("-inf")
    eligible = torch.where(counted[:, None], valid, commit)
    limit = torch.where(counted, counts, scores.shape[1] + 1)
    columns = torch.arange(scores.shape[1], device=scores.device)
    taken = torch.zeros_like(commit)
    count = torch.zeros_like(counts)
    for spaced in (True, False):
        for rank in range(min(depth, scores.shape[1])):
            position = order[:, rank : rank + 1]
            take = eligible.gather(1, position)[:, 0] & (count < limit)
            take &= ~taken.gather(1, position)[:, 0]
            if spaced:
                near = (columns[None, :] - position).abs() < dilation[:, None]
                take &= ~(near & taken).any(dim=1)
            else:
                take &= counted
            taken.scatter_(1, position, take[:, None] | taken.gather(1, position))
            count += take.long()
    return torch.where((dilation > 1)[:, None], taken, commit)
