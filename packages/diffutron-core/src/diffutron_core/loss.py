"""The MDLM training objective (MDLM Eq. 10; LLaDA Eq. 3; dLLM's MDLM trainer)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from diffutron_core.schedules import LinearSchedule, Schedule

__all__ = ["mdlm_loss"]


def mdlm_loss(
    logits: torch.Tensor,
    target_ids: torch.Tensor,
    masked: torch.Tensor,
    maskable: torch.Tensor,
    t: torch.Tensor,
    *,
    schedule: Schedule = LinearSchedule(),
    normalization: Literal["sequence", "token"] = "sequence",
) -> torch.Tensor:
    """Weighted cross-entropy at the masked positions: ``sum_i w(t_b) * CE_i`` (MDLM Eq. 10).

    With the linear schedule ``w(t) = 1/t`` (LLaDA Eq. 3).

    Args:
        logits: ``(B, L, V)`` model outputs, or ``(M, V)`` already gathered at the ``M`` scored
            positions in row-major order (what a ``sparse_prediction`` head returns).
        target_ids: ``(B, L)`` clean ids.
        masked: ``(B, L)`` bool, positions that were masked.
        maskable: ``(B, L)`` bool, positions eligible for masking; only ``masked & maskable``
            positions are scored.
        t: ``(B,)`` diffusion time of each row.
        schedule: gives the weight ``w(t)``.
        normalization: ``"sequence"`` (the dLLM version the paper used): each row's weighted sum
            divided by that row's number of maskable positions, then the mean over rows (a row with
            nothing maskable contributes 0). ``"token"``: the total weighted sum divided by the
            total number of maskable positions in the batch.

    Returns:
        A scalar, differentiable with respect to ``logits``. The cross-entropy is computed in
        float32 on the scored rows only (never a full-vocabulary softmax of every position).
    """
    if normalization not in ("sequence", "token"):
        raise ValueError(f"normalization must be 'sequence' or 'token', got {normalization!r}")
    maskable = maskable.bool()
    scored = masked.bool() & maskable  # (B, L)
    rows = scored.nonzero(as_tuple=True)[0]  # (M,) row index of every scored position
    if logits.dim() == 3:
        if logits.shape[:2] != scored.shape:
            raise ValueError(
                f"logits (B, L, V) {tuple(logits.shape)} do not match masks {tuple(scored.shape)}"
            )
        logits = logits[scored]  # (M, V)
    elif logits.dim() != 2 or logits.shape[0] != rows.numel():
        raise ValueError(
            f"gathered logits must be (M, V) with M = {rows.numel()} scored positions, "
            f"got {tuple(logits.shape)}"
        )
    ce = F.cross_entropy(logits.float(), target_ids[scored], reduction="none")  # (M,)
    weight = schedule.weight(t.to(device=ce.device, dtype=torch.float32))  # (B,)
    weighted = ce * weight[rows]  # (M,)
    n_maskable = maskable.sum(dim=1).to(ce.device)  # (B,)
    if normalization == "token":
        return weighted.sum() / n_maskable.sum().clamp(min=1)
    per_row = torch.zeros(scored.shape[0], device=ce.device, dtype=ce.dtype)
    per_row = per_row.index_add(0, rows, weighted)  # (B,)
    return (per_row / n_maskable.clamp(min=1)).mean()
