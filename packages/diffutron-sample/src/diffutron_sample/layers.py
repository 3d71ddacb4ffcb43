"""The block cache's loop over a ModernBERT model's own layers: some columns of each row run
through them, attending to fresh keys and values for those columns and stored ones for the rest,
under each layer's own attention pattern and rotary settings (docs/sampling.md#block-cache)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import scaled_dot_product_attention

Layers = Callable[..., tuple[Tensor, Tensor | None]]
"""What runs the layers: :func:`run_layers`, or a compiled copy of it."""


def _masks(model: Any, columns: Tensor, keys: Tensor | None, width: int) -> dict[str, Any]:
    """``(B, 1, A, W)`` attention masks per layer type: every real key (``keys``; None when all
    are real: no mask, sdpa's fast path) for the global layers, those within ``sliding_window``
    columns for the local ones (as transformers masks them)."""
    full = None if keys is None else keys[:, None, None, :].expand(-1, 1, columns.shape[1], -1)
    masks = {"full_attention": full}
    window = getattr(model.config, "sliding_window", None)
    if window is not None:
        where = torch.arange(width, device=columns.device)
        near = ((columns[:, :, None] - where).abs() <= window)[:, None]  # (B, 1, A, W)
        masks["sliding_attention"] = near if full is None else full & near
    return masks


def _rotary(backbone: Any, states: Tensor, positions: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    return {
        kind: backbone.rotary_emb(states, positions, kind)
        for kind in set(backbone.config.layer_types)
    }


def run_layers(
    model: Any,
    ids: Tensor,
    keys: Tensor | None,
    positions: Tensor,
    columns: Tensor,
    kv: Tensor,
    keep: bool,
    inplace: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """``(states, kv)``: the ``(B, A, H)`` final states of ``columns`` ``(B, A)`` (an entry may
    repeat another's column: it computes the same) of canvases ``ids`` ``(B, W)`` whose real
    columns are ``keys`` (None: all of them). ``kv`` ``(layers, 2, B, heads, W, d)`` holds the
    other columns' keys and values; each layer puts the fresh ones of ``columns`` in their place
    before attending (into ``kv`` itself with ``inplace``: a view of the cache buffer), and with
    ``keep`` they all come back, stacked like ``kv``. Shapes in, shapes out: nothing depends on
    the values, so ``torch.compile`` can take it whole."""
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

    backbone = model.model
    states = backbone.embeddings(input_ids=ids.gather(1, columns))  # (B, A, H)
    rotary = _rotary(backbone, states, positions.gather(1, columns))
    masks = _masks(model, columns, keys, ids.shape[1])
    batch, width, heads = states.shape[0], states.shape[1], kv.shape[3]
    where = columns[:, None, :, None].expand(-1, heads, -1, kv.shape[-1])  # (B, heads, A, d)
    kept, scatter = [], torch.Tensor.scatter_ if inplace else torch.Tensor.scatter
    for index, layer in enumerate(backbone.layers):
        qkv = layer.attn.Wqkv(layer.attn_norm(states)).view(batch, width, 3, heads, -1)
        query, key, value = qkv.transpose(1, 3).unbind(dim=2)  # each (B, heads, A, d)
        cos, sin = rotary[layer.attention_type]
        query, key = apply_rotary_pos_emb(query, key, cos, sin, unsqueeze_dim=1)
        keys_, values = scatter(kv[index, 0], 2, where, key), scatter(kv[index, 1], 2, where, value)
        mixed = scaled_dot_product_attention(
            query, keys_, values, attn_mask=masks[layer.attention_type]
        )  # (B, heads, A, d)
        states = states + layer.attn.Wo(mixed.transpose(1, 2).reshape(batch, width, -1))
        states = states + layer.mlp(layer.mlp_norm(states))
        if keep:
            kept.append(torch.stack([keys_, values]))
    return backbone.final_norm(states), torch.stack(kept) if keep else None
