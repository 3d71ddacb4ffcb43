"""Backbones: the paper's mmBERT-base (by Hub id, or its published shape without weights) and the
tiny preset's small ModernBERT, built from a config offline."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from diffutron_common import DiffutronError, check_model_source, reason
from diffutron_common import adapters as common_adapters
from diffutron_common.progress import quiet_transformers
from diffutron_train.errors import TrainError

MMBERT_BASE = "jhu-clsp/mmBERT-base"
MMBERT_BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 256_000,
    "hidden_size": 768,
    "intermediate_size": 1152,
    "num_hidden_layers": 22,
    "num_attention_heads": 12,
    "max_position_embeddings": 8192,
    "global_attn_every_n_layers": 3,
    "local_attention": 128,
    "global_rope_theta": 160_000.0,
    "local_rope_theta": 160_000.0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "cls_token_id": 2,
    "sep_token_id": 1,
}
"""mmBERT-base's published shape (docs/training.md#base-model): 307,786,240 parameters, 196.6M
of them the tied embedding. Enough to count parameters on the ``meta`` device without downloading
weights."""

TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "max_position_embeddings": 512,
    "global_attn_every_n_layers": 2,
    "local_attention": 64,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "cls_token_id": 2,
    "sep_token_id": 1,
}
"""The tiny preset: a 4-layer, 128-wide ModernBERT that trains on a laptop CPU in minutes."""


def model_config(preset: str, *, vocab_size: int | None = None, **overrides: Any):
    """A ``ModernBertConfig`` for ``"paper"`` (mmBERT-base's shape) or ``"tiny"``."""
    from transformers import ModernBertConfig

    if preset == "paper":
        values = dict(MMBERT_BASE_CONFIG)
    elif preset == "tiny":
        if vocab_size is None:
            raise ValueError("the tiny preset needs the tokenizer's vocab_size")
        values = {**TINY_CONFIG, "vocab_size": vocab_size}
    else:
        raise ValueError(f"unknown preset {preset!r}; use 'tiny' or 'paper'")
    return ModernBertConfig(**{**values, **overrides})


def build_model(config, *, device: str | torch.device | None = None, seed: int | None = None):
    """A freshly initialised ``ModernBertForMaskedLM``; ``device="meta"`` allocates no weights
    (parameter counts of a full-size model in well under a second)."""
    from transformers import ModernBertForMaskedLM

    if seed is not None:
        torch.manual_seed(seed)
    context = torch.device(device) if device is not None else contextlib.nullcontext()
    with context:
        return ModernBertForMaskedLM(config)


def adapter_base(name_or_path: str | None) -> str | None:
    """The base model of a LoRA adapter folder, or None for any other model."""
    if not common_adapters.is_adapter_folder(name_or_path):
        return None
    try:
        return common_adapters.adapter_base(name_or_path)
    except DiffutronError as exc:
        raise TrainError(str(exc)) from None


def tokenizer_source(name_or_path: str) -> str:
    """Where a model's tokenizer is (an adapter folder without one: its base's)."""
    try:
        return common_adapters.tokenizer_source(name_or_path)
    except DiffutronError as exc:
        raise TrainError(str(exc)) from None


def load_masked_lm(name_or_path: str, *, trust_remote_code: bool = False):
    """A masked LM from a model directory, a Hub id, or a LoRA adapter folder (merged into its
    base with PEFT); safetensors only; code shipped with the model runs only with
    ``trust_remote_code``; a failure is one line."""
    from transformers import AutoModelForMaskedLM

    quiet_transformers()
    try:
        check_model_source(name_or_path)
    except DiffutronError as exc:
        raise TrainError(str(exc)) from None
    base = adapter_base(name_or_path)
    source = base or name_or_path
    try:
        model = AutoModelForMaskedLM.from_pretrained(
            source, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # OSError, ValueError, Hub errors: one line for the user
        what = f"the adapter's base model {source!r}" if base else f"model {source!r}"
        raise TrainError(f"cannot load {what}: {reason(exc)}") from None
    if base is None:
        return model
    if not (Path(name_or_path) / "adapter_model.safetensors").is_file():
        raise TrainError(
            f"{name_or_path} has no adapter_model.safetensors (pickled .bin adapters are never "
            "loaded)"
        )
    from peft import PeftModel

    try:
        adapted = PeftModel.from_pretrained(model, str(name_or_path), is_trainable=False)
    except Exception as exc:  # a config PEFT cannot read, shapes of another model
        raise TrainError(f"{name_or_path} does not fit {base}: {reason(exc)}") from None
    merged = adapted.merge_and_unload()
    merged.requires_grad_(True)  # PEFT froze the base; the merged model trains like any other
    return merged


def check_fits(max_length: int, positions: int | None, *, what: str = "--max-length") -> None:
    """Rows of ``max_length`` tokens must fit the model's ``positions`` (its
    ``max_position_embeddings``): a longer row would index past its position table."""

    if positions is not None and max_length > positions:
        raise TrainError(
            f"{what} {max_length} exceeds the model's {positions} positions; use at most "
            f"{positions}"
        )


def model_positions(name_or_path: str | None, preset: str, *, trust_remote_code: bool = False):
    """``max_position_embeddings`` of the model a run trains: a folder's or Hub id's config, or
    the preset's shape; None where the config cannot be read (loading then says why)."""
    if name_or_path is None:
        values = MMBERT_BASE_CONFIG if preset == "paper" else TINY_CONFIG
        return values["max_position_embeddings"]
    name_or_path = adapter_base(name_or_path) or name_or_path
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception:  # the model's own load reports the problem in one line
        return None
    return getattr(config, "max_position_embeddings", None)
