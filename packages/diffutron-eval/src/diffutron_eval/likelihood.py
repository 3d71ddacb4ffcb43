"""Log-likelihoods of continuations under a masked diffusion LM, batched across the choices of a
question, with the output layer run only on the masked rows.

The estimates are :func:`diffutron_core.mc_loglikelihood`'s with ``batch_size=mc_num``, draw for
draw: each continuation gets its own generator (seeded by :func:`diffutron_core.request_seed` from
the seed and the token ids, so results do not depend on request order) and its ``mc_num`` mask
counts are stratified together by :func:`diffutron_core.mc_mask_draws`. The batch size only
decides how the canvases are packed into forward passes, so it never changes a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from diffutron_core import mc_mask_draws, pad_rows, seeds


@dataclass
class Scored:
    loglikelihood: float
    greedy: bool
    """Whether every continuation token is the argmax when the whole continuation is masked."""


def _canvases(
    prefix: list[int],
    context: list[int],
    continuation: list[int],
    suffix: list[int],
    *,
    mask_token_id: int,
    mc_num: int,
    generator: torch.Generator,
):
    """Rows to score for one continuation: ``(ids, masked, weight)`` per row, where ``weight``
    multiplies the row's masked cross-entropy (``L / l / mc_num``; 1 for the exact case), plus
    the index of the greedy-check row (all of the continuation masked)."""
    head = prefix + context
    length = len(continuation)
    target = torch.tensor(continuation)
    rows = []
    if length == 1:
        draws = [(torch.tensor([1]), torch.ones(1, 1, dtype=torch.bool))]
        scale = 1.0
    else:  # one stratified set of mc_num draws, whatever the batch size
        draws = [mc_mask_draws(length, mc_num, generator=generator)]
        scale = 1.0 / mc_num
    for levels, is_masked in draws:
        for level, row_mask in zip(levels.tolist(), is_masked, strict=True):
            ids = torch.tensor(head + continuation + suffix)
            masked = torch.zeros(len(ids), dtype=torch.bool)
            masked[len(head) : len(head) + length] = row_mask
            ids[masked] = mask_token_id
            weight = scale * (length / level if length > 1 else 1.0)
            rows.append((ids, masked, weight, False))
    full = torch.tensor(head + continuation + suffix)
    every = torch.zeros(len(full), dtype=torch.bool)
    every[len(head) : len(head) + length] = True
    full[every] = mask_token_id
    if length == 1:
        rows[0] = (rows[0][0], rows[0][1], rows[0][2], True)  # the exact row is the greedy row
    else:
        rows.append((full, every, 0.0, True))
    return rows, target


def score_continuations(
    lm,
    items: Sequence[tuple[list[int], list[int]]],
    *,
    prefix: list[int],
    suffix: list[int],
    mask_token_id: int,
    pad_token_id: int,
    mc_num: int,
    batch_size: int,
    seed: int,
) -> list[Scored]:
    """Score ``(context_ids, continuation_ids)`` pairs with one model (a
    :class:`diffutron_sample.MaskedLM`), packing the rows of all of them into batches of at most
    ``batch_size`` rows. ``prefix``/``suffix``: the tokenizer's special tokens around a text."""
    plan, targets = _plan(
        items, prefix=prefix, suffix=suffix, mask_token_id=mask_token_id, mc_num=mc_num, seed=seed
    )
    totals = [0.0] * len(items)
    greedy = [True] * len(items)
    for start in range(0, len(plan), batch_size):
        chunk = plan[start : start + batch_size]
        logits = _masked_logits(lm, chunk, pad_token_id=pad_token_id)
        offset = 0
        for index, row_ids, row_masked, weight, is_greedy_row in chunk:
            count = int(row_masked.sum())
            row_logits = logits[offset : offset + count]
            offset += count
            begins = len(row_ids) - len(suffix) - len(targets[index])
            positions = row_masked.nonzero().flatten() - begins  # within the continuation
            gold = targets[index][positions]
            if weight:
                ce = F.cross_entropy(row_logits.float(), gold, reduction="sum").item()
                totals[index] -= ce * weight
            if is_greedy_row:
                greedy[index] = bool((row_logits.argmax(-1) == gold).all())
    return [Scored(total, g) for total, g in zip(totals, greedy, strict=True)]


def _plan(
    items: Sequence[tuple[list[int], list[int]]],
    *,
    prefix: list[int],
    suffix: list[int],
    mask_token_id: int,
    mc_num: int,
    seed: int,
):
    """Every row to score, ``(item index, ids, masked, weight, greedy row?)``, items in order,
    and each item's continuation as a tensor. Each item draws from its own generator, seeded by
    :func:`~diffutron_core.seeds.request_seed` from ``seed`` and its ids."""
    plan = []
    targets = []
    for index, (context, continuation) in enumerate(items):
        rows, target = _canvases(
            prefix,
            context,
            continuation,
            suffix,
            mask_token_id=mask_token_id,
            mc_num=mc_num,
            generator=seeds.generator(seeds.request_seed(seed, context, continuation)),
        )
        targets.append(target)
        plan += [(index, *row) for row in rows]
    return plan, targets


def _masked_logits(lm, chunk, *, pad_token_id: int) -> torch.Tensor:
    """One forward pass over a chunk of planned rows, right-padded into a batch: the logits at
    their masked positions, ``(M, V)`` in row-major order, on the CPU."""
    ids, attention = pad_rows([row_ids for _, row_ids, _, _, _ in chunk], pad_token_id)
    masked = pad_rows([row_masked for _, _, row_masked, _, _ in chunk], 0)[0].bool()
    device = lm.device
    with torch.inference_mode():
        rows, columns = (w.to(device) for w in masked.nonzero(as_tuple=True))
        return lm.logits_at(ids.to(device), attention.to(device), None, (rows, columns)).cpu()
