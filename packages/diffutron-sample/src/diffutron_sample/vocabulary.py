"""The arithmetic over each candidate's row of logits: the draw and its peak, and the
``logsumexp`` the confidences are read from (docs/sampling.md#one-step). Both keep torch's own
operations, so that confidences, and the answers, stay the same bit for bit."""

from __future__ import annotations

import torch

from diffutron_core import gumbel_argmax, peak_argmax
from diffutron_sample.config import SamplerConfig


def draw(
    logits: torch.Tensor,
    banned: tuple[int, ...],
    config: SamplerConfig,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, peak)``: each row of ``logits`` drawn with the row's temperature, never a ``banned``
    id (those columns are set to ``-inf`` for the draw and put back after: no copy of the
    logits), and the row's largest logit, banned ids included. A greedy draw is the argmax
    (:func:`~diffutron_core.peak_argmax`, the first maximal value, as ``max(dim)``), whose pass
    over the vocabulary gives the peak as well. The banned columns (one or two ids) are views,
    not an index: no index kernel."""
    saved = [logits[:, i].clone() for i in banned]
    for i in banned:
        logits[:, i] = float("-inf")
    if config.temperature > 0:
        x0 = gumbel_argmax(logits, config.temperature, generator=generator)
        for i, column in zip(banned, saved, strict=True):
            logits[:, i] = column
        return x0, logits.amax(dim=1)
    peak, x0 = peak_argmax(logits)
    for i, column in zip(banned, saved, strict=True):
        logits[:, i] = column
        peak = torch.maximum(peak, column)  # max is exact: the larger of the parts' peaks
    return x0, peak


def logsumexp_into(logits: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
    """``torch.logsumexp(logits, dim=1)`` bit for bit, given each row's maximum ``peak``, computed
    in the storage of ``logits``, which it overwrites: torch's shift (an infinite peak counts as
    0), ``exp`` and sum, without its max pass and its ``(M, V)`` temporary."""
    shift = peak.nan_to_num(nan=float("nan"), posinf=0.0, neginf=0.0)  # NaN stays NaN
    total = logits.sub_(shift[:, None]).exp_().sum(dim=1)
    return total.log_().add_(shift)
