"""The seed formulas of Diffutron, in one place: every random draw of a run derives from the user's
seed and its position in the run (a window and sample, a request's token ids, a training draw or
epoch), never from the order or size of the batches, so results repeat for a seed.

Seeds of different kinds are spread :data:`SEED_STRIDE` apart per user seed; a seed for one draw
is an int, and :func:`generator` turns it into a :class:`torch.Generator`.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Sequence

import torch

__all__ = [
    "DROPOUT_OFFSET",
    "MAX_SEED",
    "SEED_STRIDE",
    "WINDOW_STRIDE",
    "check_seed",
    "dropout_seed",
    "generator",
    "mask_seed",
    "request_seed",
    "shuffle_seed",
    "window_seed",
]

SEED_STRIDE = 1_000_003
"""A prime that separates the draws of consecutive user seeds."""
WINDOW_STRIDE = 64
"""Seeds reserved per perplexity window: its Monte-Carlo samples (more when a run asks for more)."""
DROPOUT_OFFSET = 1 << 40
"""Moves a training draw's dropout seed far from every masking seed."""


MAX_SEED = 2**64 - 1
"""The largest seed a :class:`torch.Generator` takes (an unsigned 64-bit integer)."""


def check_seed(seed: object, *, name: str = "seed") -> int:
    """``seed`` if it is a whole number in ``[0, MAX_SEED]``, else a ``ValueError`` naming the
    range: the one rule every door (CLI, server, library) checks a user's seed by."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number in [0, 2**64 - 1], got {seed!r}")
    return seed


def generator(seed: int | None, device: str | torch.device | None = None) -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` (CPU by default) seeded with ``seed`` (checked by
    :func:`check_seed`), or with a fresh non-deterministic seed when ``seed`` is None."""
    made = torch.Generator(device=device)
    if seed is None:
        made.seed()
        return made
    return made.manual_seed(check_seed(seed))


def window_seed(seed: int, window: int, sample: int, samples: int) -> int:
    """The seed of Monte-Carlo sample ``sample`` (of ``samples``) of perplexity window ``window``.

    ``seed * SEED_STRIDE + window * max(WINDOW_STRIDE, samples) + sample``: with at most
    :data:`WINDOW_STRIDE` samples this is the historical ``seed * 1_000_003 + window * 64 +
    sample``, so earlier results repeat; with more, each window gets a block of ``samples``
    seeds, so no two (window, sample) pairs of a run share a seed.
    """
    if not 0 <= sample < samples:
        raise ValueError(f"sample must be in 0..{samples - 1}, got {sample}")
    return seed * SEED_STRIDE + window * max(WINDOW_STRIDE, samples) + sample


def request_seed(seed: int, *parts: Sequence[int]) -> int:
    """A seed for one scored request (e.g. its context and continuation ids), independent of the
    order of requests: ``(seed * SEED_STRIDE + crc32(ids)) mod 2**63``, where ``ids`` are the
    bytes of every part's ids as 64-bit integers in the machine's byte order (as a torch int64
    tensor holds them)."""
    data = b"".join(array("q", [int(i) for i in part]).tobytes() for part in parts)
    return (seed * SEED_STRIDE + zlib.crc32(data)) % (2**63)


def mask_seed(seed: int, draw: int) -> int:
    """The training loop's seed for the masking noise of micro-batch draw ``draw``:
    ``seed * SEED_STRIDE + draw``."""
    return seed * SEED_STRIDE + draw


def dropout_seed(seed: int, draw: int) -> int:
    """The training loop's seed for the dropout of micro-batch draw ``draw``:
    ``mask_seed(seed, draw) + DROPOUT_OFFSET`` (``1 << 40``)."""
    return mask_seed(seed, draw) + DROPOUT_OFFSET


def shuffle_seed(seed: int, epoch: int) -> int:
    """The training loop's seed for the row order of epoch ``epoch``: ``seed + epoch``."""
    return seed + epoch
