"""Rows of token ids of different lengths as one batch: the padding rule of sampling (prompts,
on the left) and evaluation (scored rows, on the right). Training rows are padded by
diffutron-data's collators, in numpy, which does not depend on this package."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["pad_rows"]


def pad_rows(
    rows: Sequence[Sequence[int] | torch.Tensor],
    pad_token_id: int,
    *,
    side: str = "right",
    width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, each ``(len(rows), width)`` long tensors: every row placed
    at the ``side`` given (``"right"`` pads after the tokens, ``"left"`` before them) in a canvas
    of ``pad_token_id``; ``attention_mask`` is 1 on the row's own tokens. ``width`` defaults to
    the longest row and may not be shorter than it."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    longest = max((len(row) for row in rows), default=0)
    width = longest if width is None else width
    if width < longest:
        raise ValueError(f"a row of {longest} tokens does not fit in width {width}")
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row) == 0:
            continue
        where = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, where] = torch.as_tensor(row, dtype=torch.long)
        mask[i, where] = 1
    return ids, mask
