"""Collators: tokenised rows -> padded batches (numpy, or torch with ``return_tensors="pt"``).

diffutron-data itself does not need torch; ``"pt"`` imports it only when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np


def _output(batch: dict[str, np.ndarray], return_tensors: str) -> dict[str, Any]:
    if return_tensors == "np":
        return batch
    import torch

    return {k: torch.from_numpy(v) for k, v in batch.items()}


def _pad(
    features: list[dict[str, Any]], pad_token_id: int, max_length: int | None, multiple: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, real)``: rows right-padded to the longest (or ``max_length``), rounded up to
    ``multiple``; ``real`` marks the tokens that are not padding."""
    rows = [list(f["input_ids"]) for f in features]
    longest = max(len(r) for r in rows)
    if max_length is not None and longest > max_length:
        raise ValueError(f"a row of {longest} tokens exceeds max_length {max_length}")
    width = longest if max_length is None else max_length
    if multiple:
        width = -(-width // multiple) * multiple
    input_ids = np.full((len(rows), width), pad_token_id, dtype=np.int64)
    real = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        real[i, : len(row)] = True
    return input_ids, real


@dataclass
class CPTCollator:
    """Pad CPT rows on the right; ``maskable`` marks real tokens that are not special.

    Returns ``input_ids``, ``attention_mask`` and ``maskable``, each ``(B, L)``; ``L`` is the
    longest row (or ``max_length``), rounded up to ``pad_to_multiple_of``.
    """

    pad_token_id: int
    special_token_ids: Sequence[int] = ()
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_tensors: Literal["np", "pt"] = "pt"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids, real = _pad(
            features, self.pad_token_id, self.max_length, self.pad_to_multiple_of
        )
        maskable = real & ~np.isin(input_ids, list(self.special_token_ids))
        batch = {
            "input_ids": input_ids,
            "attention_mask": real.astype(np.int64),
            "maskable": maskable,
        }
        return _output(batch, self.return_tensors)


@dataclass
class SFTCollator:
    """Pad SFT rows (``input_ids``, ``maskable``, ``prompt_length``) on the right.

    With ``pad_tail=True`` (dLLM's BERT recipe) the pad tail is maskable, so the model learns to
    write pads after the answer, and attention covers every position (``attention_mask`` all
    ones). With ``pad_tail=False`` pads are neither maskable nor attended. Rows are padded to
    ``max_length`` when given (dLLM pads SFT rows to the full length), else to the longest row.
    """

    pad_token_id: int
    max_length: int | None = None
    pad_tail: bool = True
    pad_to_multiple_of: int | None = None
    return_tensors: Literal["np", "pt"] = "pt"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids, real = _pad(
            features, self.pad_token_id, self.max_length, self.pad_to_multiple_of
        )
        maskable = ~real if self.pad_tail else np.zeros_like(real)
        for i, feature in enumerate(features):
            maskable[i, : len(feature["maskable"])] = feature["maskable"]
        attention = np.ones_like(real, dtype=np.int64) if self.pad_tail else real.astype(np.int64)
        prompt_length = np.array([f["prompt_length"] for f in features], dtype=np.int64)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "maskable": maskable,
            "prompt_length": prompt_length,
        }
        return _output(batch, self.return_tensors)
