"""One buffer for the block cache's stored keys and values: every request's in a row of one
``(layers, 2, rows, heads, width, head_dim)`` tensor, right-aligned like its canvas
(:class:`~diffutron_sample.slots.CanvasSlots`). It is allocated once per capacity and width
bucket (doubling its rows, widening by 64 columns on the left) and refreshed in place: a cached
step whose rows hold consecutive rows of it reads them as a view, with no copy
(docs/sampling.md#block-cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

WIDTH_STEP = 64
"""The buffer's width grows in multiples of this."""


class KVSlots:
    """Rows of stored keys and values; :meth:`acquire` gives a row, :meth:`release` takes it
    back. The tensor is made at the first store, with the model's dimensions and dtype."""

    def __init__(self) -> None:
        self.kv: torch.Tensor | None = None
        self.free: list[int] = []
        self.taken = 0

    def acquire(self) -> int:
        if self.free:
            return self.free.pop(0)
        self.taken += 1
        return self.taken - 1

    def release(self, slot: int) -> None:
        self.free.append(slot)
        self.free.sort()

    def ensure(self, like: torch.Tensor, rows: int, width: int) -> torch.Tensor:
        """The buffer, grown to at least ``rows`` rows and ``width`` columns; ``like``
        ``(layers, 2, heads, d)`` gives the other dimensions, dtype and device."""
        layers, two, heads, dim = like.shape
        kv = self.kv
        if kv is not None and kv.shape[2] >= rows and kv.shape[4] >= width:
            return kv
        old_rows, old_width = (0, 0) if kv is None else (kv.shape[2], kv.shape[4])
        new_rows = max(rows, 2 * old_rows, 1)
        new_width = -(-max(width, old_width) // WIDTH_STEP) * WIDTH_STEP
        grown = like.new_zeros(layers, two, new_rows, heads, new_width, dim)
        if kv is not None:
            grown[:, :, :old_rows, :, new_width - old_width :] = kv
        self.kv = grown
        return grown

    def row(self, slot: int, length: int) -> torch.Tensor:
        """``(layers, 2, heads, length, d)``: the stored keys and values of row ``slot``."""
        assert self.kv is not None
        return self.kv[:, :, slot, :, self.kv.shape[4] - length :]


@dataclass
class BlockCache:
    """One request's stored keys and values (``kv``: ``(layers, 2, heads, L, head_dim)`` for its
    canvas of ``L`` columns, None before the first full pass); ``block`` is the block it was
    stored for and ``since`` the cached steps run from it. Bound to a :class:`KVSlots`
    (``slots``), it keeps them in its row of that buffer; alone, in a tensor of its own."""

    block: int = -1
    since: int = 0
    slots: KVSlots | None = field(default=None, repr=False)
    slot: int = -1
    length: int = 0
    own: torch.Tensor | None = field(default=None, repr=False)
    anchor: torch.Tensor | None = field(default=None, repr=False)
    """The adaptive refresh's watched columns' final states at the block's refresh."""
    drift: float = 0.0
    """Their drift from ``anchor`` at the last cached pass (docs/sampling.md#adaptive-refresh)."""
    settled: set[int] = field(default_factory=set, repr=False)
    """Delayed caching: the active block's committed columns whose stored keys and values were
    computed with their committed token (a pass read them from the store)."""
    unsettled: set[int] = field(default_factory=set, repr=False)
    """Columns committed since the last pass: the next pass computes and stores them."""

    @property
    def kv(self) -> torch.Tensor | None:
        if self.slots is None:
            return self.own
        if self.slot < 0 or self.length == 0:
            return None
        return self.slots.row(self.slot, self.length)

    def save(self, fresh: torch.Tensor) -> None:
        """Store ``fresh`` ``(layers, 2, heads, L, d)``: in place in its buffer row, or as its
        own copy."""
        if self.slots is None:
            self.own = fresh.detach().clone()
            return
        if self.slot < 0:
            self.slot = self.slots.acquire()
        buffer = self.slots.ensure(fresh[:, :, :, 0], self.slot + 1, fresh.shape[3])
        self.length = fresh.shape[3]
        buffer[:, :, self.slot, :, buffer.shape[4] - self.length :] = fresh.detach()

    def release(self) -> None:
        """Give its row back (the request has left)."""
        if self.slots is not None and self.slot >= 0:
            self.slots.release(self.slot)
        self.slot, self.length, self.own, self.anchor = -1, 0, None, None
        self.settled, self.unsettled = set(), set()


@dataclass(frozen=True)
class Span:
    """What one row of a pass computes: columns ``[start, end)`` of its own canvas from its
    ``store`` (cached), or every column, storing them (``refresh``); the adaptive refresh's
    ``watch``ed columns and the drift ``bound`` past which the row is computed again in full
    (docs/sampling.md#adaptive-refresh)."""

    store: BlockCache | None
    start: int
    end: int
    refresh: bool
    watch: tuple[int, ...] = ()
    bound: float | None = None
    skip: frozenset[int] | None = None
    """Delayed caching (None: off): the columns of ``[start, end)`` a cached pass reads from
    ``store`` instead of computing them; what it computes is stored
    (docs/sampling.md#delayed-caching)."""
