"""Per-row settings (thresholds, penalties, rule bounds) as device tensors, made once per set of
values: a steady batch asks for the same ones at every step, and each fresh tensor is a host
copy (on a GPU, a transfer too). The tensors are shared: read them, never write to them."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import torch


def row_values(values: Iterable[float], dtype: torch.dtype, device: Any) -> torch.Tensor:
    """``torch.tensor(values, dtype=dtype)`` on ``device``, shared with every caller that asks
    for the same values (NaN included)."""
    key = tuple(None if math.isnan(v) else float(v) for v in values)
    return _made(key, dtype, torch.device(device))


@functools.lru_cache(maxsize=512)
def _made(key: tuple[float | None, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor([math.nan if v is None else v for v in key], dtype=dtype).to(device)
