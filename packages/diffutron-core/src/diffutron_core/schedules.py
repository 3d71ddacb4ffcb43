"""Noise schedules of the masked diffusion forward process (MDLM, Sahoo et al. 2024, §3).

A schedule is a tiny object with ``alpha(t)``, the probability that a token is still clean at time
``t`` in [0, 1], and ``weight(t) = -alpha'(t) / (1 - alpha(t))``, the factor of the MDLM ELBO that
multiplies the cross-entropy of a token masked at time ``t`` (MDLM Eq. 10). A new schedule is a new
class, not a new branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["CosineSchedule", "LinearSchedule", "Schedule"]


def _as_tensor(t: torch.Tensor | float) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else torch.tensor(float(t))


class Schedule:
    """Base class: subclasses give ``alpha`` and ``alpha_derivative``; ``weight`` follows.

    Subclasses should override ``weight`` with a closed form when ``1 - alpha(t)`` loses precision
    near ``t = 0`` (the generic quotient below is exact only in exact arithmetic).
    """

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        raise NotImplementedError

    def alpha_derivative(self, t: torch.Tensor | float) -> torch.Tensor:
        raise NotImplementedError

    def weight(self, t: torch.Tensor | float) -> torch.Tensor:
        """MDLM loss weight ``-alpha'(t) / (1 - alpha(t))``."""
        t = _as_tensor(t)
        return -self.alpha_derivative(t) / (1 - self.alpha(t))


@dataclass(frozen=True)
class LinearSchedule(Schedule):
    """``alpha(t) = 1 - t``: each token is masked with probability ``t``; ``weight(t) = 1 / t``.

    The schedule of LLaDA, MDLM's default and dLLM's ``LinearAlphaScheduler``.
    """

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        return 1 - _as_tensor(t)

    def alpha_derivative(self, t: torch.Tensor | float) -> torch.Tensor:
        return -torch.ones_like(_as_tensor(t))

    def weight(self, t: torch.Tensor | float) -> torch.Tensor:
        return 1 / _as_tensor(t)


@dataclass(frozen=True)
class CosineSchedule(Schedule):
    """``alpha(t) = 1 - cos(pi/2 * (1 - t)) = 1 - sin(pi t / 2)``, dLLM's ``CosineAlphaScheduler``.

    ``alpha'(t) = -(pi/2) cos(pi t / 2)``, so ``weight(t) = (pi/2) cos(pi t/2) / sin(pi t/2)
    = (pi/2) / tan(pi t / 2)``, evaluated in that closed form (no ``1 - alpha`` cancellation
    near 0).
    """

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        return 1 - torch.sin((math.pi / 2) * _as_tensor(t))

    def alpha_derivative(self, t: torch.Tensor | float) -> torch.Tensor:
        return -(math.pi / 2) * torch.cos((math.pi / 2) * _as_tensor(t))

    def weight(self, t: torch.Tensor | float) -> torch.Tensor:
        return (math.pi / 2) / torch.tan((math.pi / 2) * _as_tensor(t))
