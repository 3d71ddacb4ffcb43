"""LoRA as the paper applies it for continual pre-training (paper §4.2; docs/training.md#lora)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAPER_LORA: dict[str, Any] = {
    "r": 256,
    "lora_alpha": 256,
    "lora_dropout": 0.05,
    "target_modules": ["Wqkv", "Wo", "Wi"],
}
"""Every attention (Q, K, V fused in ``Wqkv``; O in ``attn.Wo``) and MLP (in ``Wi``, out
``mlp.Wo``) linear layer; rank and alpha 256, dropout 0.05; everything else frozen. On
mmBERT-base this trains 54,067,200 of 361,853,440 parameters: 14.94%."""


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable parameters: {self.trainable:,} of {self.total:,} ({self.percent:.2f}%)"


def count_parameters(model) -> ParameterCount:
    """Trainable and total parameters (works on the ``meta`` device)."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return ParameterCount(trainable, total)


def apply_lora(model, **overrides: Any):
    """Wrap ``model`` with LoRA adapters (``PAPER_LORA`` updated by ``overrides``); the base
    weights are frozen. Adapters are created on the device of the model's weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    settings = {**PAPER_LORA, **overrides}
    device = next(model.parameters()).device
    with torch.device(device):
        return get_peft_model(model, LoraConfig(**settings))
