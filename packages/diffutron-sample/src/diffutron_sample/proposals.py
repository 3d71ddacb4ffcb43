"""One denoising step's proposals: what each still-masked position would become, and how sure.

The backbone runs over the whole canvas (twice the batch with classifier-free guidance), the
output layer only at the candidate positions (docs/sampling.md#logits-only-where-they-are-read).
The logits then get guidance and dLLM's repetition penalty, a token is drawn by Gumbel-max, and
its confidence is read from the full softmax (docs/sampling.md#one-step). Which proposals are
committed is :mod:`diffutron_sample.schedule`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from diffutron_core import gumbel_argmax
from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.model import MaskedLM


def apply_repetition_penalty(
    logits: torch.Tensor, rows: torch.Tensor, present: torch.Tensor, penalty: float
) -> torch.Tensor:
    """HF-style penalty: for every id ``present`` in the row's canvas, divide a positive logit by
    ``penalty`` and multiply a negative one.

    ``logits`` (M, V) of rows ``rows`` (M,) of the batch; ``present`` (B, V).
    """
    hit = present[rows]  # (M, V)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(hit, penalised, logits)


def _present_ids(canvas, attention, vocab_size, *, mask_token_id, eos_token_id) -> torch.Tensor:
    """(B, V) bool: ids on each row's canvas, except padding, the mask and the eos id."""
    use = attention & (canvas != mask_token_id)
    if eos_token_id is not None:
        use &= canvas != eos_token_id
    present = torch.zeros(canvas.shape[0], vocab_size, dtype=torch.bool, device=canvas.device)
    rows = torch.arange(canvas.shape[0], device=canvas.device)[:, None].expand_as(canvas)
    present[rows[use], canvas[use]] = True
    return present


def _confidence(
    logits: torch.Tensor, x0: torch.Tensor, config: SamplerConfig, generator
) -> torch.Tensor:
    """Softmax probability of the chosen token, ``exp(logit[x0] - logsumexp(logits))``, in float32
    on the given rows only (never a (B, L, V) float64 softmax), or uniform random scores for
    ``remasking="random"``; docs/sampling.md#confidence-and-remasking. Returned as float64 scores
    for ranking."""
    if config.remasking == "random":
        return torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64)
    chosen = logits.gather(1, x0[:, None])[:, 0]
    return (chosen - torch.logsumexp(logits, dim=1)).exp().double()


@dataclass
class Proposer:
    """What stays fixed over one sampling call's forward passes; call it once per step.

    ``attention`` marks the real positions of the canvas, ``given`` the tokens guidance hides.
    The mask id and the ``forbidden`` ids are never proposed (committing one would leave a hole
    in the answer). ``eos_token_id`` is exempt from the repetition penalty.
    """

    lm: MaskedLM
    attention: torch.Tensor
    given: torch.Tensor
    config: SamplerConfig
    mask_token_id: int
    eos_token_id: int | None
    generator: torch.Generator | None
    forbidden: tuple[int, ...] = ()
    positions: torch.Tensor = field(init=False)
    never: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.positions = (self.attention.long().cumsum(1) - 1).clamp(min=0)
        ids = sorted({self.mask_token_id, *self.forbidden})
        self.never = torch.tensor(ids, device=self.attention.device)

    def __call__(
        self, canvas: torch.Tensor, candidates: torch.Tensor, start: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: ``(scores, tokens)`` of shape ``candidates`` (``(B, W)``, columns
        from ``start``): each candidate's proposed token ``x0`` (after guidance and the
        repetition penalty; never a forbidden id) and its confidence under the full softmax;
        ``-inf`` where nothing may be chosen."""
        rows, cols = candidates.nonzero(as_tuple=True)
        logits = self.logits(canvas, (rows, cols + start))  # (M, V)
        # The confidence stays that of the full softmax, so whenever the reference would not
        # choose a forbidden id, the choice and the ranking are exactly the reference's.
        allowed = logits.index_fill(1, self.never, float("-inf"))
        x0 = gumbel_argmax(allowed, self.config.temperature, generator=self.generator)  # (M,)
        scores = torch.full(
            candidates.shape, float("-inf"), dtype=torch.float64, device=canvas.device
        )
        scores[rows, cols] = _confidence(logits, x0, self.config, self.generator)
        chosen = torch.zeros_like(candidates, dtype=torch.long)
        chosen[rows, cols] = x0
        return scores, chosen

    def logits(
        self, canvas: torch.Tensor, where: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """``(M, V)`` logits at the ``(row, position)`` pairs ``where``, with guidance and the
        repetition penalty; a :class:`SampleError` when they are not finite."""
        config, lm = self.config, self.lm
        if config.cfg_scale > 0:
            batch = torch.cat([canvas, canvas.masked_fill(self.given, self.mask_token_id)])
            states = lm.hidden(batch, self.attention.repeat(2, 1), self.positions.repeat(2, 1))
            cond = lm.logits_at(states[: len(canvas)], where)
            uncond = lm.logits_at(states[len(canvas) :], where)
            logits = uncond + (config.cfg_scale + 1) * (cond - uncond)
        else:
            logits = lm.logits_at(lm.hidden(canvas, self.attention, self.positions), where)
        if config.repetition_penalty != 1.0:
            present = _present_ids(
                canvas,
                self.attention,
                logits.shape[1],
                mask_token_id=self.mask_token_id,
                eos_token_id=self.eos_token_id,
            )
            logits = apply_repetition_penalty(logits, where[0], present, config.repetition_penalty)
        if not bool(torch.isfinite(torch.logsumexp(logits, dim=1)).all()):
            raise SampleError(
                "the model's logits are not finite (NaN or inf); run it in float32 (--dtype "
                "float32) or with milder cfg_scale / repetition_penalty"
            )
        return logits
