"""When the block cache refreshes (docs/sampling.md#adaptive-refresh).

``cache_refresh="fixed"`` refreshes a row's stored keys and values at the start of each block,
and every ``cache_interval`` cached steps inside it when that is set. ``"adaptive"`` (what
``--cache`` gives on the command line and in the server unless an interval or a rule is asked
for; in :class:`~diffutron_sample.SamplerConfig` it is asked for by ``cache_refresh`` or
``cache_drift``, so a config's cache means what it always meant) watches the columns
beside the active block: its cached steps also recompute the :data:`WATCHED` columns on each
side of the block (their keys and values are then fresh too), and after each pass the drift of
those columns' final states from their states at the block's refresh, ``max |h - h_0| / |h_0|``,
is the row's measure of how stale its stored columns have grown as the block filled. A row whose
drift reaches ``cache_drift`` runs the same pass again in full, storing its keys and values
afresh (a refresh): its proposals are then the uncached model's. 0 refreshes at every pass,
which is the uncached sampler exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from diffutron_common import check_number
from diffutron_sample.errors import SampleError
from diffutron_sample.kvslots import BlockCache, Span

CACHE_MODES = ("prefix", "dual")
REFRESH_MODES = ("fixed", "adaptive")
DEFAULT_DRIFT = 0.1
"""The adaptive refresh's default drift bound (measured: docs/sampling.md#adaptive-refresh)."""
WATCHED = 4
"""Columns watched (and recomputed) on each side of the active block."""
MAX_DRIFT = 1000.0


REFRESH_SETTINGS = ("cache_interval", "cache_refresh", "cache_drift")
CACHE_SETTINGS = ("cache", *REFRESH_SETTINGS, "cache_delayed")
"""Every block-cache setting a door passes on (delayed caching is not a refresh rule: with it
alone a cache still refreshes adaptively)."""


def adaptive_by_default(changes: Mapping[str, Any], defaults: Any = None) -> bool:
    """Whether a door's ``changes`` ask for a cache and no refresh setting (nor do the
    ``defaults`` they apply to): the doors' cache alone refreshes adaptively."""
    asked = any(
        changes.get(name) is not None or getattr(defaults, name, None) is not None
        for name in REFRESH_SETTINGS
    )
    return changes.get("cache") is not None and not asked


def refresh_of(config: Any) -> tuple[str | None, float | None]:
    """``(refresh, drift)`` of a config: the refresh rule its cache uses (None: no cache) and the
    adaptive rule's drift bound (None for the fixed rule)."""
    if config.cache is None:
        return None, None
    adaptive = config.cache_refresh == "adaptive" or (
        config.cache_refresh is None and config.cache_drift is not None
    )
    if not adaptive:
        return "fixed", None
    return "adaptive", DEFAULT_DRIFT if config.cache_drift is None else float(config.cache_drift)


def check_cache(config: Any) -> None:
    """Raise :class:`SampleError` naming the fix for an unknown cache or refresh rule, an
    interval or drift bound out of range, or a drift bound the fixed rule would ignore."""
    if config.cache is not None and config.cache not in CACHE_MODES:
        raise SampleError(
            f"unknown cache {config.cache!r}; use {' or '.join(CACHE_MODES)} (or no cache: "
            "leave it unset)"
        )
    if config.cache_refresh is not None and config.cache_refresh not in REFRESH_MODES:
        raise SampleError(
            f"unknown cache_refresh {config.cache_refresh!r}; use {' or '.join(REFRESH_MODES)}"
        )
    if config.cache_interval is not None:
        check_number(
            "cache_interval",
            config.cache_interval,
            minimum=1,
            maximum=1_000_000,
            integer=True,
            error=SampleError,
            hint="omit it to refresh at block starts only",
        )
    if config.cache_drift is not None:
        check_number(
            "cache_drift",
            config.cache_drift,
            minimum=0,
            maximum=MAX_DRIFT,
            error=SampleError,
            hint="0 refreshes at every step",
        )
        if config.cache_refresh == "fixed":
            raise SampleError("cache_drift applies to cache_refresh 'adaptive'; drop one of them")


def watched(start: int, end: int, length: int) -> tuple[int, ...]:
    """The columns watched for block ``[start, end)`` of a canvas of ``length`` columns."""
    left = range(max(0, start - WATCHED), start)
    return (*left, *range(end, min(length, end + WATCHED)))


def measure_drift(
    out: torch.Tensor, spans: list[Span], lengths: list[int], rows: Sequence[int]
) -> None:
    """After a pass whose final states are ``out`` ``(B, W, H)`` (left-padded), for each of
    ``rows`` that watches: its store keeps the watched columns' states at a refresh, and their
    drift from them after a cached pass (one copy of the columns to the device and one transfer
    of the drifts to the host, for the whole batch)."""
    watching = [row for row in rows if spans[row].store is not None and spans[row].watch]
    if not watching:
        return
    width = out.shape[1]
    where = [(row, width - lengths[row] + c) for row in watching for c in spans[row].watch]
    index = torch.tensor(where, device=out.device)  # one copy to the device for the batch
    sizes = [len(spans[row].watch) for row in watching]
    watched_states = torch.split(out[index[:, 0], index[:, 1]].float(), sizes)
    pending = []
    for row, now in zip(watching, watched_states, strict=True):
        span, store = spans[row], spans[row].store
        assert store is not None  # kept above
        anchor = store.anchor
        if span.refresh or anchor is None or anchor.shape != now.shape:
            store.anchor, store.drift, store.since = now.clone(), 0.0, 0
            continue
        change = (now - anchor).norm(dim=-1) / anchor.norm(dim=-1).clamp(min=1e-6)
        pending.append((store, change.max()))
    if pending:
        values = torch.stack([change for _, change in pending]).tolist()
        for (store, _), value in zip(pending, values, strict=True):
            store.drift = value


def drifted(spans: list[Span]) -> list[int]:
    """The rows whose cached pass drifted to their bound: they are computed again in full."""
    return [
        row
        for row, span in enumerate(spans)
        if not span.refresh
        and span.bound is not None
        and span.store is not None
        and span.store.drift >= span.bound
    ]


def advance_span(
    store: BlockCache | None,
    mode: str | None,
    interval: int | None,
    block: tuple[int, int],
    index: int,
    length: int,
    drift: float | None = None,
    delayed: bool = False,
) -> Span:
    """Advance the row's cache ``store`` by one step and return the span of its next pass (the
    store's block and count of cached steps change: call it once per pass). The span is columns
    ``block`` ``(start, end)`` (its ``index``-th block) in ``dual`` mode, from ``start`` to the
    end of its ``length`` columns in ``prefix`` mode; a full pass that stores its keys and values
    when the row has no cache for this block yet or has run ``interval`` cached steps from it;
    with a ``drift`` bound (adaptive) a span that also takes and watches the columns beside the
    block; ``delayed``, a span that skips the block's settled columns (delayed caching). With
    ``mode`` None (or no ``store``) a full pass that keeps nothing."""
    if mode is None or store is None:
        return Span(None, 0, length, True)
    if store.block != index:
        store.settled.clear()
        store.unsettled.clear()
    stale = store.kv is None or store.block != index
    refresh = stale or (interval is not None and store.since >= interval)
    if refresh:
        store.block, store.since = index, 0
    else:
        store.since += 1
    skip = settle(store, refresh) if delayed else None
    start, end = block
    if drift is None:
        return Span(store, start, end if mode == "dual" else length, refresh, skip=skip)
    watch = watched(start, end, length)
    first, last = min((start, *watch)), max((end, *(c + 1 for c in watch)))
    last = last if mode == "dual" else length
    return Span(store, first, last, refresh, watch, drift, skip)


def settle(store: BlockCache, refresh: bool) -> frozenset[int]:
    """Delayed caching's columns for this pass to read from ``store`` (none when it refreshes);
    the columns committed since the last pass are computed in it, and settled after it."""
    skip = frozenset() if refresh else frozenset(store.settled)
    store.settled |= store.unsettled
    store.unsettled.clear()
    return skip
