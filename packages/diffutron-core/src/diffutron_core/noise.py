"""The forward (noising) process: draw diffusion times and mask tokens (MDLM §3, LLaDA Eq. 1)."""

from __future__ import annotations

import torch

from diffutron_core.schedules import LinearSchedule, Schedule

__all__ = ["mask_tokens", "sample_t"]


def sample_t(
    batch_size: int,
    *,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One diffusion time per sequence, ``t ~ Uniform[eps, 1)``: ``eps + (1 - eps) * u``.

    Returns a float32 tensor of shape ``(batch_size,)``. ``eps`` keeps the loss weight
    ``1/t`` finite (dLLM and LLaDA use 1e-3).
    """
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    u = torch.rand(batch_size, generator=generator, device=device)
    t = eps + (1 - eps) * u
    # float32 rounding of the affine map can land on 1.0 exactly; keep the interval half-open.
    return t.clamp(max=torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)).item())


def mask_tokens(
    input_ids: torch.Tensor,
    t: torch.Tensor,
    *,
    mask_token_id: int,
    maskable: torch.Tensor | None = None,
    schedule: Schedule = LinearSchedule(),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each maskable token by ``mask_token_id`` with probability ``1 - alpha(t_b)``.

    Pure substitution, independently per position (no BERT 80/10/10 rule).

    Args:
        input_ids: ``(B, L)`` clean token ids.
        t: ``(B,)`` diffusion time of each row.
        mask_token_id: id written at masked positions.
        maskable: ``(B, L)`` bool, positions eligible for masking; all positions when ``None``.
        schedule: gives ``alpha``; linear by default, so the mask probability is ``t``.
        generator: for the uniform draws, which are made on ``input_ids.device``.

    Returns:
        ``(noisy_ids, masked)``: ``(B, L)`` ids with masks written in, and the ``(B, L)`` bool mask.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, L), got shape {tuple(input_ids.shape)}")
    if t.shape != input_ids.shape[:1]:
        raise ValueError(f"t must have shape ({input_ids.shape[0]},), got {tuple(t.shape)}")
    p_mask = 1 - schedule.alpha(t.to(device=input_ids.device, dtype=torch.float32))  # (B,)
    u = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)  # (B, L)
    masked = u < p_mask[:, None]
    if maskable is not None:
        if maskable.shape != input_ids.shape:
            raise ValueError(
                f"maskable must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(maskable.shape)}"
            )
        masked &= maskable.to(device=input_ids.device, dtype=torch.bool)
    return input_ids.masked_fill(masked, mask_token_id), masked
