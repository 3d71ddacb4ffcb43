"""Loading the model the lm-eval model ``diffutron`` evaluates."""

from __future__ import annotations

from diffutron_eval.errors import EvalError
from diffutron_sample import SampleError, load_model


def _flag(value) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def load_masked_lm(
    pretrained: str | None, device: str | None, dtype: str | None, trust_remote_code
):
    """``(model, tokenizer)`` of a masked LM directory or Hub id, or one :class:`EvalError`."""
    if pretrained is None:
        raise EvalError("diffutron: give pretrained=DIR (a masked LM directory or Hub id)")
    try:
        model, tokenizer = load_model(
            str(pretrained),
            device=device,
            dtype=dtype or None,
            trust_remote_code=_flag(trust_remote_code),
        )
    except SampleError as exc:
        raise EvalError(str(exc)) from None
    if not _is_masked_lm(model):
        raise EvalError(f"{pretrained} is not a masked LM (no masked-LM head)")
    return model, tokenizer


def _is_masked_lm(model) -> bool:
    return type(model).__name__.endswith("ForMaskedLM")
