"""Block caching for ModernBERT-style encoders (Fast-dLLM's prefix and dual cache, for a
bidirectional model whose layers alternate global attention with a local window).

A request's cache holds every layer's keys and values (after the rotary embedding) for its whole
canvas, stored by a full pass at the start of each block (and every ``cache_interval`` steps inside
it). The steps in between run only some columns through the layers: ``prefix`` mode the active
block and everything after it, ``dual`` mode the active block alone; at each layer those columns'
queries attend to their own fresh keys and values and to the cached ones of every other column,
under the layer's own pattern (global, or ``|i - j| <= sliding_window`` for the local layers) and
rotary settings. The layers are the Hugging Face modules themselves: nothing of the model is
copied (docs/sampling.md#block-cache).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch.nn.functional import scaled_dot_product_attention

logger = logging.getLogger(__name__)

CACHE_MODES = ("prefix", "dual")
_WARNED: set[str] = set()


@dataclass
class BlockCache:
    """One request's stored keys and values: ``kv`` is ``(layers, 2, heads, L, head_dim)`` for
    its canvas of ``L`` columns (None before the first full pass); ``block`` is the block it was
    stored for and ``since`` the cached steps run from it."""

    kv: torch.Tensor | None = None
    block: int = -1
    since: int = 0


@dataclass(frozen=True)
class Span:
    """What one row of a pass computes: columns ``[start, end)`` of its own canvas from its
    ``store`` (cached), or every column, storing them (``refresh``)."""

    store: BlockCache
    start: int
    end: int
    refresh: bool


def cache_support(model: torch.nn.Module) -> str | None:
    """None when the block cache can run ``model`` (a Hugging Face ModernBERT masked LM as
    transformers 5 defines it), else why not."""
    backbone = getattr(model, "model", None)
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "modernbert" or backbone is None:
        kind = getattr(config, "model_type", type(model).__name__)
        return f"the block cache needs a ModernBERT model, not {kind}"
    needed = ("embeddings", "layers", "final_norm", "rotary_emb")
    if not all(hasattr(backbone, n) for n in needed) or not getattr(config, "layer_types", None):
        return "this transformers version's ModernBERT has no per-layer attention types"
    if config._attn_implementation not in ("sdpa", "eager"):
        return f"the block cache runs sdpa attention, not {config._attn_implementation}"
    return None


def usable(model: torch.nn.Module) -> bool:
    """Whether ``model`` can use the cache; the first time a kind of model cannot, the log says
    so (it then generates without the cache)."""
    why = cache_support(model)
    if why is not None and why not in _WARNED:
        _WARNED.add(why)
        logger.warning("%s: generating without the block cache", why)
    return why is None


def _masks(model, columns: torch.Tensor, keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """``(B, 1, A, W)`` attention masks per layer type: every real key for the global layers,
    those within ``sliding_window`` columns for the local ones (as transformers masks them)."""
    full = keys[:, None, None, :].expand(-1, 1, columns.shape[1], -1)
    masks = {"full_attention": full}
    window = getattr(model.config, "sliding_window", None)
    if window is not None:
        where = torch.arange(keys.shape[1], device=keys.device)
        near = (columns[:, :, None] - where).abs() <= window  # (B, A, W)
        masks["sliding_attention"] = full & near[:, None]
    return masks


def _rotary(backbone, states, positions) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {
        kind: backbone.rotary_emb(states, positions, kind)
        for kind in set(backbone.config.layer_types)
    }


def run_layers(model, ids, keys, positions, columns, valid, kv: torch.Tensor) -> torch.Tensor:
    """``(B, A, H)`` final states of ``columns`` ``(B, A)`` (``valid`` marks the real entries;
    the others repeat a real column and are ignored) of canvases ``ids`` ``(B, W)`` whose real
    columns are ``keys``. ``kv`` ``(layers, 2, B, heads, W, d)`` holds the other columns' keys
    and values; each layer writes the fresh ones of ``columns`` into it before attending."""
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

    backbone = model.model
    rows = torch.arange(ids.shape[0], device=ids.device)[:, None].expand_as(columns)
    at = (rows[valid], columns[valid])  # the entries whose keys and values are written
    states = backbone.embeddings(input_ids=ids.gather(1, columns))  # (B, A, H)
    rotary = _rotary(backbone, states, positions.gather(1, columns))
    masks = _masks(model, columns, keys)
    batch, width, heads = states.shape[0], states.shape[1], kv.shape[3]
    for index, layer in enumerate(backbone.layers):
        qkv = layer.attn.Wqkv(layer.attn_norm(states)).view(batch, width, 3, heads, -1)
        query, key, value = qkv.transpose(1, 3).unbind(dim=2)  # each (B, heads, A, d)
        cos, sin = rotary[layer.attention_type]
        query, key = apply_rotary_pos_emb(query, key, cos, sin, unsqueeze_dim=1)
        kv[index, 0][at[0], :, at[1]] = key.transpose(1, 2)[valid]
        kv[index, 1][at[0], :, at[1]] = value.transpose(1, 2)[valid]
        mixed = scaled_dot_product_attention(
            query, kv[index, 0], kv[index, 1], attn_mask=masks[layer.attention_type]
        )  # (B, heads, A, d)
        states = states + layer.attn.Wo(mixed.transpose(1, 2).reshape(batch, width, -1))
        states = states + layer.mlp(layer.mlp_norm(states))
    return backbone.final_norm(states)


def _columns(spans, lengths, width: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(columns, valid)`` ``(B, A)``: each row's columns to compute in the padded batch (all
    its real ones when it refreshes), padded by repeating its first column."""
    ranges = []
    for span, length in zip(spans, lengths, strict=True):
        offset = width - length
        start, end = (0, length) if span.refresh else (span.start, span.end)
        ranges.append(torch.arange(offset + start, offset + end, device=device))
    longest = max(len(r) for r in ranges)
    columns = torch.stack([torch.cat([r, r[:1].expand(longest - len(r))]) for r in ranges])
    valid = (
        torch.arange(longest, device=device)[None]
        < torch.tensor([len(r) for r in ranges], device=device)[:, None]
    )
    return columns, valid


def _gathered(spans, lengths, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(layers, 2, B, heads, W, d)``: the rows' stored keys and values, right-aligned like
    their left-padded canvases (zeros where a row refreshes or has padding)."""
    shape = next(s.store.kv.shape for s in spans if s.store.kv is not None and not s.refresh)
    layers, _, heads, _, dim = shape
    kv = like.new_zeros(layers, 2, len(spans), heads, width, dim)
    for row, (span, length) in enumerate(zip(spans, lengths, strict=True)):
        if not span.refresh:
            kv[:, :, row, :, width - length :] = span.store.kv
    return kv


def cached_states(model, ids, keys, positions, spans: list[Span]) -> torch.Tensor:
    """``(B, W, H)`` final states of one pass over left-padded canvases ``ids`` ``(B, W)``
    (``keys`` marks the real columns), each row computed as its :class:`Span` says (zeros at the
    columns it does not compute); refreshing rows store their keys and values."""
    lengths = keys.sum(1).tolist()
    out = None
    for refresh in (True, False):
        group = [row for row, span in enumerate(spans) if span.refresh is refresh]
        if not group:
            continue
        mine = [spans[row] for row in group]
        width = ids.shape[1]
        sizes = [lengths[row] for row in group]
        columns, valid = _columns(mine, sizes, width, ids.device)
        config = model.config
        heads = config.num_attention_heads
        if refresh:
            dim = config.hidden_size // heads
            kv = ids.new_zeros(
                len(config.layer_types),
                2,
                len(group),
                heads,
                width,
                dim,
                dtype=model.dtype,
            )
        else:
            kv = _gathered(mine, sizes, width, next(model.parameters()))
        index = torch.tensor(group, device=ids.device)
        states = run_layers(model, ids[index], keys[index], positions[index], columns, valid, kv)
        if out is None:
            out = states.new_zeros(*ids.shape, states.shape[-1])
        rows = index[:, None].expand_as(columns)
        out[rows[valid], columns[valid]] = states[valid]
        if refresh:
            for slot, span in enumerate(mine):
                span.store.kv = kv[:, :, slot, :, width - sizes[slot] :].clone()
    return out


def next_span(
    store: BlockCache | None,
    mode: str | None,
    interval: int | None,
    block: tuple,
    index: int,
    length: int,
) -> Span:
    """The span of a row's next pass: columns ``block`` ``(start, end)`` (its ``index``-th block)
    in ``dual`` mode, from ``start`` to the end of its ``length`` columns in ``prefix`` mode;
    a full pass that stores its keys and values when the row has no cache for this block yet or
    has run ``interval`` cached steps from it. With ``mode`` None (or no ``store``) a full pass
    that keeps nothing."""
    if mode is None or store is None:
        return Span(BlockCache(), 0, length, True)
    stale = store.kv is None or store.block != index
    refresh = stale or (interval is not None and store.since >= interval)
    if refresh:
        store.block, store.since = index, 0
    else:
        store.since += 1
    start, end = block
    return Span(store, start, end if mode == "dual" else length, refresh)
