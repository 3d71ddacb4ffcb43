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
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import Tensor

from diffutron_sample.kvslots import BlockCache, KVSlots, Span
from diffutron_sample.layers import Layers, run_layers
from diffutron_sample.refresh import CACHE_MODES, advance_span, drifted, measure_drift

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_MODES",
    "BlockCache",
    "Span",
    "advance_span",
    "cache_support",
    "cached_states",
    "run_layers",
    "usable",
]

_WARNED: set[str] = set()


def cache_support(model: torch.nn.Module) -> str | None:
    """None when the block cache (and the compiled step, which runs the same layer loop) can run
    ``model`` (a Hugging Face ModernBERT masked LM as transformers 5 defines it), else the reason,
    for the caller to word."""
    backbone = getattr(model, "model", None)
    config: Any = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "modernbert" or backbone is None:
        kind = getattr(config, "model_type", type(model).__name__)
        return f"it needs a ModernBERT model, not {kind}"
    needed = ("embeddings", "layers", "final_norm", "rotary_emb")
    if not all(hasattr(backbone, n) for n in needed) or not getattr(config, "layer_types", None):
        return "this transformers version's ModernBERT has no per-layer attention types"
    if config._attn_implementation not in ("sdpa", "eager"):
        return f"it runs sdpa attention, not {config._attn_implementation}"
    return None


def usable(model: torch.nn.Module) -> bool:
    """Whether ``model`` can use the cache; the first time a kind of model cannot, the log says
    so (it then generates without the cache)."""
    why = cache_support(model)
    if why is not None and why not in _WARNED:
        _WARNED.add(why)
        logger.warning("the block cache cannot run this model (%s): generating without it", why)
    return why is None


def _bucket(size: int, step: int) -> int:
    return -(-size // step) * step


def _columns(
    spans: list[Span], lengths: list[int], width: int, device: torch.device, step: int
) -> tuple[Tensor, Tensor]:
    """``(columns, valid)`` ``(B, A)``: each row's columns to compute in the padded batch (all
    its real ones when it refreshes), padded by repeating its first column to the longest (a
    multiple of ``step``)."""
    ranges = []
    for span, length in zip(spans, lengths, strict=True):
        offset = width - length
        start, end = (0, length) if span.refresh else (span.start, span.end)
        if span.refresh or not span.skip:
            ranges.append(torch.arange(offset + start, offset + end, device=device))
            continue
        wanted = [offset + c for c in range(start, end) if c not in span.skip]
        ranges.append(torch.tensor(wanted, dtype=torch.long, device=device))
    longest = _bucket(max(len(r) for r in ranges), step)
    columns = torch.stack([torch.cat([r, r[:1].expand(longest - len(r))]) for r in ranges])
    valid = (
        torch.arange(longest, device=device)[None]
        < torch.tensor([len(r) for r in ranges], device=device)[:, None]
    )
    return columns, valid


def _stored(model: Any, spans: list[Span], lengths: list[int], width: int, rows: int) -> Tensor:
    """``(layers, 2, rows, heads, W, d)``: the spans' stored keys and values, right-aligned like
    their left-padded canvases (zeros where a row refreshes or has padding), the first row's
    repeated over the ``rows`` beyond the spans."""
    config = model.config
    heads = config.num_attention_heads
    dim = config.hidden_size // heads
    dtype = model.model.layers[0].attn.Wqkv.weight.dtype  # what the keys and values come out as
    kv = torch.zeros(
        len(config.layer_types), 2, rows, heads, width, dim, dtype=dtype, device=model.device
    )
    for row, (span, length) in enumerate(zip(spans, lengths, strict=True)):
        stored = None if span.store is None else span.store.kv
        if not span.refresh and stored is not None:
            kv[:, :, row, :, width - length :] = stored
    if rows > len(spans) and not spans[0].refresh:
        kv[:, :, len(spans) :] = kv[:, :, :1]
    return kv


@dataclass(frozen=True)
class Buckets:
    """Shapes rounded up so a compiled step sees few of them: canvas widths to multiples of
    ``width``, computed columns to multiples of ``columns``, batches to powers of two (with
    ``batch``). The defaults are no bucketing."""

    width: int = 1
    columns: int = 1
    batch: bool = False


def _padded(tensors: tuple[Tensor, ...], rows: int, width: int) -> list[Tensor]:
    """Each ``(B, W, ...)`` tensor left-padded to ``width`` columns (zeros), then its first row
    repeated up to ``rows`` rows."""
    out = []
    for tensor in tensors:
        extra = width - tensor.shape[1]
        if extra:
            tensor = torch.cat(
                [tensor.new_zeros(tensor.shape[0], extra, *tensor.shape[2:]), tensor], 1
            )
        if rows > len(tensor):
            tensor = torch.cat([tensor, tensor[:1].expand(rows - len(tensor), *tensor.shape[1:])])
        out.append(tensor)
    return out


def _buffer_view(
    model: Any, spans: list[Span], lengths: list[int], width: int, buckets: Buckets
) -> Tensor | None:
    """The group's keys and values as a view of its rows of the cache buffer, when it can be:
    shapes not bucketed, every row's store in one :class:`KVSlots`, in consecutive rows. Rows
    that refresh take their buffer row now; a refresh then writes it in place."""
    found = [span.store for span in spans]
    stores = [s for s in found if s is not None and s.slots is not None]
    if buckets != Buckets() or len(stores) != len(found):
        return None
    buffer_rows = cast(KVSlots, stores[0].slots)  # every store is bound (checked above)
    if any(s.slots is not buffer_rows for s in stores):
        return None
    for store, span, length in zip(stores, spans, lengths, strict=True):
        if span.refresh and store.slot < 0:
            store.slot = buffer_rows.acquire()
        elif not span.refresh and (store.slot < 0 or store.length != length):
            return None
    first = stores[0].slot
    if [s.slot for s in stores] != list(range(first, first + len(stores))):
        return None
    config = model.config
    heads = config.num_attention_heads
    weight = model.model.layers[0].attn.Wqkv.weight
    like = weight.new_empty(len(config.layer_types), 2, heads, config.hidden_size // heads)
    buffer = buffer_rows.ensure(like, first + len(stores), width)
    for store, span, length in zip(stores, spans, lengths, strict=True):
        if span.refresh:
            store.length = length
    return buffer[:, :, first : first + len(stores), :, buffer.shape[4] - width :]


def _group_pass(
    model: Any,
    ids: Tensor,
    keys: Tensor,
    positions: Tensor,
    spans: list[Span],
    lengths: list[int],
    layers: Layers,
    buckets: Buckets,
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """One group of rows (all refreshing, or all reading their cache; ``lengths`` their real
    columns): ``(states, kv, columns, valid)`` at the group's own width, bucketed on the way in
    and cut back on the way out. Rows in consecutive rows of the cache buffer run on it in place
    (no copy; a refresh stores as it goes, and ``kv`` comes back None)."""
    original = ids.shape[1]
    view = _buffer_view(model, spans, lengths, original, buckets)
    if view is not None:
        columns, valid = _columns(spans, lengths, original, ids.device, 1)
        mask = None if bool(keys.all()) else keys
        states, _ = layers(model, ids, mask, positions, columns, view, False, True)
        return states, None, columns, valid
    width = _bucket(original, buckets.width)
    rows = 1 << (len(spans) - 1).bit_length() if buckets.batch else len(spans)
    columns, valid = _columns(spans, lengths, width, ids.device, buckets.columns)
    ids, keys, positions = _padded((ids, keys, positions), rows, width)
    kv = _stored(model, spans, lengths, width, rows)
    columns = _padded((columns,), rows, columns.shape[1])[0]
    keep = any((span.refresh or span.skip is not None) and span.store is not None for span in spans)
    states, fresh = layers(
        model, ids, None if bool(keys.all()) else keys, positions, columns, kv, keep
    )
    count, shift = len(spans), width - original
    fresh = None if fresh is None else fresh[:, :, :count]
    return states[:count], fresh, columns[:count] - shift, valid


def cached_states(
    model: Any,
    ids: Tensor,
    keys: Tensor,
    positions: Tensor,
    spans: list[Span],
    *,
    layers: Layers = run_layers,
    buckets: Buckets = Buckets(),
    meter: Any = None,
) -> Tensor:
    """``(B, W, H)`` final states of one pass over left-padded canvases ``ids`` ``(B, W)``
    (``keys`` marks the real columns), each row computed as its :class:`Span` says (zeros at the
    columns it does not compute); refreshing rows store their keys and values. ``layers`` runs
    the layers (:func:`run_layers`, or a compiled copy of it, on ``buckets``' shapes). Rows
    whose watched columns drifted past their bound are computed again in full, and counted in
    ``meter``'s ``refreshes`` and ``positions_run`` (docs/sampling.md#adaptive-refresh)."""
    out, lengths = None, keys.sum(1).tolist()
    passes = (layers, buckets)
    for refresh in (True, False):
        group = [row for row, span in enumerate(spans) if span.refresh is refresh]
        if group:
            out = _rows_pass(model, (ids, keys, positions), spans, lengths, group, passes, out)
    assert out is not None
    measure_drift(out, spans, lengths, range(len(spans)))
    redo = drifted(spans)  # the adaptive refresh: this pass again, in full, for these rows
    if redo:
        spans = [replace(s, refresh=True) if row in redo else s for row, s in enumerate(spans)]
        out = _rows_pass(model, (ids, keys, positions), spans, lengths, redo, passes, out)
        measure_drift(out, spans, lengths, redo)
        if meter is not None:
            meter.refreshes += len(redo)
            meter.positions_run += sum(lengths[row] for row in redo)
    return out


def _rows_pass(
    model: Any,
    canvas: tuple[Tensor, Tensor, Tensor],
    spans: list[Span],
    lengths: list[int],
    group: list[int],
    passes: tuple[Layers, Buckets],
    out: Tensor | None,
) -> Tensor:
    """Rows ``group`` of the batch (``canvas``: ids, keys, positions), which all refresh or all
    read their cache, computed into ``out`` (made at the first group); refreshes stored."""
    ids, keys, positions = canvas
    index = torch.tensor(group, device=ids.device)
    mine, sizes = [spans[row] for row in group], [lengths[row] for row in group]
    states, fresh, columns, valid = _group_pass(
        model, ids[index], keys[index], positions[index], mine, sizes, *passes
    )
    if out is None:
        out = states.new_zeros(*ids.shape, states.shape[-1])
    rows = index[:, None].expand_as(columns)
    out[rows[valid], columns[valid]] = states[valid]
    width = fresh.shape[-2] if fresh is not None else 0
    for slot, (span, length) in enumerate(zip(mine, sizes, strict=True)):
        if fresh is not None and span.store is not None:
            span.store.save(fresh[:, :, slot, :, width - length :])
    return out
