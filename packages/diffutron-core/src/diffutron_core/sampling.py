"""Pieces of the reverse (unmasking) process shared by every sampler (LLaDA Algorithm 4/5)."""

from __future__ import annotations

from functools import cache, lru_cache
from types import MappingProxyType

import torch

__all__ = ["PAPER_SAMPLER", "gumbel_argmax", "peak_argmax", "transfer_counts"]

PAPER_SAMPLER = MappingProxyType(
    {
        "steps": 128,
        "max_new_tokens": 128,
        "block_length": 32,
        "temperature": 0.1,
        "remasking": "low_confidence",
        "cfg_scale": 0.0,
        "repetition_penalty": 1.2,
    }
)
"""The paper's generation settings (its Appendix A, Table 5: 128 new tokens in as many steps,
blocks of 32, temperature 0.1, low-confidence remasking, repetition penalty 1.2), named as
``diffutron_sample.SamplerConfig``'s fields: the one home of these values, read by the sampler
(``SamplerConfig.paper``) and written into every model SFT exports (``sampler_config.json``)."""


def transfer_counts(n_masked: torch.Tensor | int, steps: int) -> torch.Tensor:
    """How many tokens to commit at each of ``steps`` steps of a block with ``n_masked`` masks.

    Step ``j`` commits ``round(remaining / (steps - j))`` with round-half-to-even (``torch.round``),
    computed in float64, so every row sums to its ``n_masked`` and the last step takes what is left.
    When ``steps`` divides ``n`` this equals LLaDA's ``get_num_transfer_tokens`` (``n // steps``
    per step plus the remainder on the first steps); dLLM evaluates the same rule in float32.

    Args:
        n_masked: ``(B,)`` (or a scalar) number of masked positions in the block, per row.
        steps: denoising steps for the block, ``>= 1``.

    Returns:
        Long tensor ``(B, steps)`` (``(steps,)`` for a scalar input).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = torch.as_tensor(n_masked)
    if n.is_floating_point() or (n < 0).any():
        raise ValueError("n_masked must hold non-negative integers")
    remaining = n.to(torch.float64)
    counts = torch.empty((*n.shape, steps), dtype=torch.long, device=n.device)
    for j in range(steps):
        k = torch.round(remaining / (steps - j))
        counts[..., j] = k.long()
        remaining = remaining - k
    return counts


def transfer_plan(n_masked: int, steps: int) -> list[int]:
    """:func:`transfer_counts` of one block as Python integers, computed on the host (no tensor):
    the same float64 rule, round-half-to-even, so the two agree count for count."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if n_masked < 0:
        raise ValueError("n_masked must be a non-negative integer")
    remaining, counts = float(n_masked), []
    for j in range(steps):
        k = round(remaining / (steps - j))  # Python's round is half-to-even, like torch.round
        counts.append(k)
        remaining -= k
    return counts


def gumbel_argmax(
    logits: torch.Tensor,
    temperature: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample ``argmax`` over the last dim of Gumbel-perturbed logits (the Gumbel-max trick).

    ``temperature == 0`` is plain ``argmax``. Otherwise draws ``u ~ U[0, 1)`` in float64 and returns
    ``argmax(logits / T - log(-log u))``, a sample from ``softmax(logits / T)``. This is LLaDA's
    ``add_gumbel_noise`` (``argmax exp(logits) / (-log u) ** T``) in log space: the same ``u`` gives
    the same token, without overflowing ``exp`` for large logits.

    Args:
        logits: ``(..., V)``.
        temperature: ``>= 0``.
        generator: for ``u``, drawn on ``logits.device``.

    Returns:
        Long tensor ``(...)``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    # max(dim).indices is argmax (the first maximal value on ties, as documented), in one pass
    # that the CPU kernels run about three times faster than argmax's
    if temperature == 0:
        return logits.max(dim=-1).indices
    u = torch.rand(logits.shape, dtype=torch.float64, generator=generator, device=logits.device)
    gumbel = -torch.log(-torch.log(u))
    return (logits.to(torch.float64) / temperature + gumbel).max(dim=-1).indices


@lru_cache(maxsize=256)
def _row_starts(rows: int, step: int, device: torch.device) -> torch.Tensor:
    """``arange(rows) * step``, made once per shape (read only)."""
    return torch.arange(rows, device=device) * step


@cache
def _chunk_length(width: int) -> int:
    """How many columns of a ``width``-wide row :func:`peak_argmax` reads as one chunk: the
    largest divisor of ``width`` up to ``max(256, 2 sqrt(width))``, or 0 when every divisor is
    under 16 (the row is then read by ``max(dim)``)."""
    limit = min(width, max(256, int(2 * width**0.5)))
    return next((k for k in range(limit, 15, -1) if width % k == 0), 0)


def peak_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits.max(dim=-1)``: each row's largest value and the index of its first occurrence,
    equal value for value and index for index, for any row without NaN (a row holding NaN gets
    NaN and an unspecified index).

    ``max(dim)`` pairs every comparison with an index, which the CPU kernels do about three times
    slower than ``amax``. This reads the rows once with ``amax`` over chunks, then runs
    ``max(dim)`` over the chunks' peaks and over the first chunk that holds the row's: about
    twice as fast on the CPU for a 4,096-token vocabulary, three times for 256,000."""
    width = logits.shape[-1]
    size = _chunk_length(width)
    if size == 0 or logits.numel() == 0:
        top = logits.max(dim=-1)
        return top.values, top.indices
    chunks = width // size
    rows = logits.reshape(-1, chunks, size)
    peak, chunk = rows.amax(dim=2).max(dim=1)  # the first chunk holding the peak
    first = _row_starts(len(rows), chunks, rows.device)  # each row's first chunk
    inside = rows.reshape(-1, size).index_select(0, first + chunk)  # (N, size); not rows[i, j]:
    # advanced indexing is several times slower on the CPU for the same copy
    column = inside.max(dim=1).indices  # the first column in it that holds the peak
    shape = logits.shape[:-1]
    return peak.reshape(shape), (chunk * size + column).reshape(shape)
