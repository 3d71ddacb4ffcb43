"""Training objectives on a batch: masked-LM at a fixed rate (the paper's CPT) and MDLM (the
paper's SFT, and CPT with ``objective="mdlm"``), both with the output layer run only on the masked
positions (ModernBERT's ``sparse_prediction`` idea: most of the cost at a 256k vocabulary)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from diffutron_core import mask_tokens, mdlm_loss, sample_t


def _masked_logits(model, noisy, attention_mask, masked) -> torch.Tensor:
    """``(M, V)`` logits at the masked positions; the head runs on those rows only when the model
    is split as backbone + head + decoder (ModernBERT), else full logits are gathered."""
    base = getattr(model, "get_base_model", lambda: model)()  # through a PEFT wrapper
    if all(hasattr(base, part) for part in ("model", "head", "decoder")):
        hidden = base.model(input_ids=noisy, attention_mask=attention_mask).last_hidden_state
        return base.decoder(base.head(hidden[masked]))
    return model(input_ids=noisy, attention_mask=attention_mask).logits[masked]


def masked_lm_loss(
    model,
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    *,
    mask_token_id: int,
    objective: Literal["mlm", "mdlm"] = "mlm",
    mlm_probability: float = 0.15,
    attention_mask: torch.Tensor | None = None,
    normalization: Literal["sequence", "token"] = "sequence",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask a batch and return the training loss.

    ``"mlm"``: each maskable token is replaced by the mask with probability ``mlm_probability``
    (pure substitution); the loss is the mean cross-entropy over the masked tokens.
    ``"mdlm"``: one ``t ~ U[1e-3, 1)`` per row, masking with probability ``t``, and
    :func:`diffutron_core.mdlm_loss` (weight ``1/t``, ``normalization`` as there).

    Args:
        input_ids: ``(B, L)`` clean ids; ``maskable``: ``(B, L)`` bool, what may be masked and
            scored (every real token in CPT; the response and pad tail in SFT).
        attention_mask: ``(B, L)``; None attends everywhere (dLLM's SFT rows).
        generator: for ``t`` and the mask draws, on the batch's device.
    """
    if objective not in ("mlm", "mdlm"):
        raise ValueError(f"objective must be 'mlm' or 'mdlm', got {objective!r}")
    batch = input_ids.shape[0]
    if objective == "mlm":
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        t = torch.full((batch,), mlm_probability, device=input_ids.device)
    else:
        t = sample_t(batch, generator=generator, device=input_ids.device)
    noisy, masked = mask_tokens(
        input_ids, t, mask_token_id=mask_token_id, maskable=maskable, generator=generator
    )
    logits = _masked_logits(model, noisy, attention_mask, masked)  # (M, V)
    if objective == "mdlm":
        return mdlm_loss(logits, input_ids, masked, maskable, t, normalization=normalization)
    if logits.shape[0] == 0:
        return logits.sum() * 0.0  # nothing masked: zero, still attached to the graph
    return F.cross_entropy(logits.float(), input_ids[masked])


class MaskedLMObjective(torch.nn.Module):
    """The training loss as one module, so that DDP, FSDP or DeepSpeed wrap it whole: the
    restricted head calls the backbone's parts directly, which a wrapper around the bare model
    would not see (its gradient hooks need the wrapped ``forward``)."""

    def __init__(
        self,
        model,
        *,
        mask_token_id: int,
        objective: Literal["mlm", "mdlm"] = "mlm",
        mlm_probability: float = 0.15,
        normalization: Literal["sequence", "token"] = "sequence",
    ) -> None:
        super().__init__()
        self.model = model
        self.mask_token_id = mask_token_id
        self.objective = objective
        self.mlm_probability = mlm_probability
        self.normalization = normalization

    def forward(
        self,
        input_ids: torch.Tensor,
        maskable: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return masked_lm_loss(
            self.model,
            input_ids,
            maskable.bool(),
            mask_token_id=self.mask_token_id,
            objective=self.objective,
            mlm_probability=self.mlm_probability,
            attention_mask=attention_mask,
            normalization=self.normalization,
            generator=generator,
        )
