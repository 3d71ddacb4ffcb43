"""dLLM's (HF-style) repetition penalty: for every id already on a row's canvas, a positive logit is
divided by the penalty and a negative one multiplied (docs/sampling.md#repetition-penalty)."""

from __future__ import annotations

import torch


def apply_repetition_penalty(
    logits: torch.Tensor, rows: torch.Tensor, present: torch.Tensor, penalty: float | torch.Tensor
) -> torch.Tensor:
    """HF-style penalty: for every id ``present`` in the row's canvas, divide a positive logit by
    ``penalty`` and multiply a negative one.

    ``logits`` (M, V) of rows ``rows`` (M,) of the batch; ``present`` (B, V); ``penalty`` a number
    or an (M, 1) tensor (each entry's row's penalty).
    """
    entry, token = present[rows].nonzero(as_tuple=True)  # the few (entry, id) pairs it touches
    if isinstance(penalty, torch.Tensor):
        penalty = penalty.reshape(-1)[entry]
    values = logits[entry, token]
    out = logits.clone()
    out[entry, token] = torch.where(values > 0, values / penalty, values * penalty)
    return out


def present_ids(
    canvas: torch.Tensor,
    attention: torch.Tensor,
    vocab_size: int,
    *,
    mask_token_id: int,
    eos_token_id: int | None,
) -> torch.Tensor:
    """(B, V) bool: ids on each row's canvas, except padding, the mask and the eos id."""
    use = attention & (canvas != mask_token_id)
    if eos_token_id is not None:
        use &= canvas != eos_token_id
    present = torch.zeros(canvas.shape[0], vocab_size, dtype=torch.bool, device=canvas.device)
    rows = torch.arange(canvas.shape[0], device=canvas.device)[:, None].expand_as(canvas)
    present[rows[use], canvas[use]] = True
    return present


def penalize_canvas_ids(
    logits: torch.Tensor,
    rows: torch.Tensor,
    canvas: torch.Tensor,
    use: torch.Tensor,
    penalty: torch.Tensor,
    *,
    spare_id: int,
) -> torch.Tensor:
    """The penalty in place on ``logits`` ``(M, V)`` of batch rows ``rows`` ``(M,)``, for the ids
    at the ``use`` positions of each row's ``canvas`` ``(B, W)``: the same numbers as
    :func:`apply_repetition_penalty` over :func:`present_ids`, touching ``M x W`` logits instead
    of reading an ``(M, V)`` table. ``spare_id`` is an id no ``use`` position holds (the mask):
    the other positions point at it, and its logit is put back after. ``penalty`` ``(M, 1)``."""
    ids = torch.where(use, canvas, spare_id).index_select(0, rows)  # (M, W); faster than [rows]
    spare = logits[:, spare_id].clone()
    values = logits.gather(1, ids)
    # an id repeated on a canvas is written as often, always with the same value
    logits.scatter_(1, ids, torch.where(values > 0, values / penalty, values * penalty))
    logits[:, spare_id] = spare  # the positions outside ``use`` changed only the spare's logit
    return logits
