"""Monte-Carlo log-likelihood of a continuation under a masked diffusion model (LLaDA Eq. 6)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["mc_loglikelihood", "mc_mask_draws", "stratified_mask_counts"]

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def stratified_mask_counts(
    n: int, length: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` mask counts in ``1..length``, spread evenly over the range from one random offset.

    ``l_i = ((k - 1 + floor(i * length / n)) mod length) + 1`` with ``k ~ U{1..length}``: each
    ``l_i`` is exactly uniform on ``1..length`` (so the estimator stays unbiased) while a batch
    covers the range evenly (lower variance than independent draws). LLaDA rounds
    ``k + i * length / n`` instead, which at .5 ties (round half to even) makes the marginal of
    ``l_i`` non-uniform.

    Returns a long tensor ``(n,)`` on the generator's device (CPU by default).
    """
    device = generator.device if generator is not None else None
    k = torch.randint(1, length + 1, (), generator=generator, device=device)
    offsets = torch.arange(n, device=k.device) * length // n  # (n,)
    return (k - 1 + offsets) % length + 1


def mc_mask_draws(
    length: int, n: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of ``n`` Monte-Carlo draws for a continuation of ``length`` tokens:
    ``(levels (n,), is_masked (n, length))`` with exactly ``levels[i]`` positions of row ``i``
    masked, chosen uniformly, and the levels stratified (:func:`stratified_mask_counts`).
    :func:`mc_loglikelihood` draws its batches with this, in this order, so an evaluator that
    batches several continuations together can reproduce its estimates draw for draw."""
    rand_device = generator.device if generator is not None else torch.device("cpu")
    levels = stratified_mask_counts(n, length, generator=generator)  # (n,)
    keys = torch.rand(n, length, generator=generator, device=rand_device)  # (n, L)
    ranks = keys.argsort(dim=1).argsort(dim=1)  # (n, L): a uniform random permutation per row
    return levels, ranks < levels[:, None]


@torch.no_grad()
def mc_loglikelihood(
    logits_fn: LogitsFn,
    context_ids: torch.Tensor | Sequence[int],
    continuation_ids: torch.Tensor | Sequence[int],
    *,
    mask_token_id: int,
    mc_num: int = 128,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
) -> float:
    """Estimate ``log p(y | c)`` by the masked-diffusion bound (LLaDA Eq. 6; dLLM's lm-eval).

    ``-log p(y|c) <= E_{l ~ U{1..L}} (L / l) * sum_{i masked} -log p(y_i | c, y with l random
    positions masked)``. Each of the ``mc_num`` samples masks exactly ``l`` continuation positions
    chosen uniformly, ``l`` stratified across each batch (:func:`stratified_mask_counts`); the
    context is never masked. Returns minus the mean of the per-sample bounds. With ``L == 1`` there
    is nothing to sample: one forward pass gives the exact ``log p(y | c)``.

    Args:
        logits_fn: maps ``(N, C + L)`` ids to ``(N, C + L, V)`` logits (e.g. a masked LM's forward).
        context_ids: ``(C,)`` ids of the context (may be empty).
        continuation_ids: ``(L,)`` ids of the continuation, ``L >= 1``.
        mask_token_id: id of the mask token.
        mc_num: number of Monte-Carlo samples.
        batch_size: samples per call of ``logits_fn``.
        generator: for the mask draws (on its own device; CPU by default).

    Returns:
        The estimate of ``log p(y | c)`` as a Python float (``<= 0`` in expectation).
    """
    context = torch.as_tensor(context_ids, dtype=torch.long).reshape(-1)
    target = torch.as_tensor(continuation_ids, dtype=torch.long).reshape(-1).to(context.device)
    n_ctx, length = context.numel(), target.numel()
    if length == 0:
        raise ValueError("continuation_ids is empty: there is nothing to score")
    if mc_num < 1 or batch_size < 1:
        raise ValueError(f"mc_num and batch_size must be >= 1, got {mc_num} and {batch_size}")
    sequence = torch.cat([context, target])  # (C + L,)

    if length == 1:
        canvas = sequence.clone()
        canvas[n_ctx] = mask_token_id
        logits = logits_fn(canvas[None])[0, n_ctx]  # (V,)
        return -F.cross_entropy(logits.float(), target[0]).item()

    total, drawn = 0.0, 0
    while drawn < mc_num:
        n = min(batch_size, mc_num - drawn)
        levels, is_masked = mc_mask_draws(length, n, generator=generator)
        total += _weighted_masked_ce(
            logits_fn, sequence, n_ctx, levels, is_masked, mask_token_id=mask_token_id
        )
        drawn += n
    return -total / mc_num


def _weighted_masked_ce(
    logits_fn: LogitsFn,
    sequence: torch.Tensor,
    n_ctx: int,
    levels: torch.Tensor,
    is_masked: torch.Tensor,
    *,
    mask_token_id: int,
) -> float:
    """``sum_i (L / l_i) * sum_{j masked in row i} -log p(y_j | ...)`` over one batch of draws
    (:func:`mc_mask_draws`): row ``i`` is ``sequence`` (``(C + L,)``, context then continuation)
    with the continuation positions of ``is_masked[i]`` (``(n, L)``, ``l_i = levels[i]`` of them)
    masked."""
    target = sequence[n_ctx:]  # (L,)
    n, length = is_masked.shape
    is_masked = is_masked.to(sequence.device)  # exactly l_i masked in row i
    levels = levels.to(sequence.device)
    canvas = sequence.repeat(n, 1)  # (n, C + L)
    canvas[:, n_ctx:] = target.masked_fill(is_masked, mask_token_id)
    logits = logits_fn(canvas)[:, n_ctx:]  # (n, L, V)
    rows = is_masked.nonzero(as_tuple=True)[0]
    ce = F.cross_entropy(
        logits[is_masked].float(), target.expand(n, length)[is_masked], reduction="none"
    )  # (M,)
    per_sample = torch.zeros(n, device=ce.device).index_add(0, rows.to(ce.device), ce)
    return (per_sample * (length / levels.to(ce.device))).sum().item()
