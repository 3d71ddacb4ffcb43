"""What a request remembers of its past proposals, for the rules that read it: how many steps each
position's proposal has stayed the same, and (KLASS) the previous step's distribution over the
active block; and the features a learned commit policy reads (docs/sampling.md#learned-policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FEATURES = ("confidence", "margin", "entropy", "block_filled", "position", "unchanged")
"""The learned policy's features, in order: the proposal's probability, its lead over the
second most probable token, the distribution's entropy, the share of the block already
committed, the position's place in its block (0 first, 1 last) and how many steps in a row its
proposal has not changed."""


@dataclass
class Trace:
    """One request's memory of its proposals (on the model's device)."""

    tokens: torch.Tensor
    """``(length,)`` each column's last proposal; -1 before the first."""
    unchanged: torch.Tensor
    """``(length,)`` steps in a row its proposal has stayed the same."""
    block: int = -1
    logprobs: torch.Tensor | None = None
    """``(block width, V)`` the previous step's log-probabilities over the active block (NaN
    where there was none), for KLASS."""

    @classmethod
    def empty(cls, length: int, device: torch.device) -> Trace:
        tokens = torch.full((length,), -1, dtype=torch.long, device=device)
        return cls(tokens, torch.zeros_like(tokens))

    def follow(self, columns: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Record this step's proposals ``tokens`` at ``columns``; their unchanged counts."""
        same = self.tokens[columns] == tokens
        counts = torch.where(same, self.unchanged[columns] + 1, 0)
        self.unchanged[columns] = counts
        self.tokens[columns] = tokens
        return counts

    def divergence(
        self, block: int, first: int, width: int, columns: torch.Tensor, logprobs: torch.Tensor
    ) -> torch.Tensor:
        """KL(this step ‖ the previous) at ``columns`` of block ``block`` (its first column
        ``first``, ``width`` wide), NaN where the position had no previous step; this step's
        ``logprobs`` are kept for the next."""
        if self.block != block or self.logprobs is None:
            self.block = block
            self.logprobs = torch.full(
                (width, logprobs.shape[1]),
                float("nan"),
                dtype=logprobs.dtype,
                device=logprobs.device,
            )
        inside = columns - first
        before = self.logprobs[inside]
        probs = logprobs.exp()
        terms = torch.where(probs > 0, probs * (logprobs - before), 0)
        self.logprobs[inside] = logprobs
        return terms.sum(dim=1).clamp(min=0)  # rounding can take a tiny KL below 0


def features(
    confidence: torch.Tensor,
    margin: torch.Tensor,
    entropy: torch.Tensor,
    filled: torch.Tensor,
    position: torch.Tensor,
    unchanged: torch.Tensor,
) -> torch.Tensor:
    """``(M, len(FEATURES))`` float32, one row per candidate, in :data:`FEATURES` order."""
    parts = (confidence, margin, entropy, filled, position, unchanged)
    return torch.stack([p.to(torch.float32) for p in parts], dim=1)
