"""LoRA adapter folders (as PEFT and dLLM save them) merged into their base model for inference,
without PEFT: ``adapter_config.json`` + ``adapter_model.safetensors``.

The merge is PEFT's ``merge_and_unload``: for each adapted linear layer ``W += B @ A * s`` (``W``
stored as ``(out, in)``; transposed for ``fan_in_fan_out`` layers), for an adapted embedding
``E += (B @ A).T * s``, with ``s = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA; ``r`` and
``alpha`` per module from ``rank_pattern`` / ``alpha_pattern``). Other tensors in the file
(``modules_to_save``, trained biases) replace the base's. Variants that are not a plain sum
(DoRA, other PEFT methods) are refused in one line, naming the way out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, cast

import torch

from diffutron_common import DiffutronError, reason
from diffutron_common import adapters as common_adapters
from diffutron_common.adapters import ADAPTER_WEIGHTS
from diffutron_sample.errors import SampleError

PREFIX = "base_model.model."
"""How PEFT's saved keys begin: the wrapper, then the base model's own parameter names."""


def is_adapter_folder(path: str | Path) -> bool:
    return common_adapters.is_adapter_folder(path)


def read_adapter_config(folder: str | Path) -> dict[str, Any]:
    """The adapter's settings, refused in one line where they cannot be merged here."""
    try:
        config = common_adapters.adapter_config(folder)
    except DiffutronError as exc:
        raise SampleError(str(exc)) from None
    kind = str(config.get("peft_type", "LORA")).upper()
    if kind != "LORA":
        raise SampleError(f"{folder} is a {kind} adapter; only LoRA adapters can be merged here")
    if config.get("use_dora"):
        raise SampleError(
            f"{folder} is a DoRA adapter; merge it with PEFT first (diffutron-train export "
            "--adapter DIR --output DIR)"
        )
    return config


def adapter_base(folder: str | Path) -> str:
    try:
        return common_adapters.adapter_base(folder)
    except DiffutronError as exc:
        raise SampleError(str(exc)) from None


def _pattern(patterns: dict[str, Any] | None, module: str, default: Any) -> Any:
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def merge_adapter(model: torch.nn.Module, folder: str | Path, config: dict[str, Any]) -> int:
    """Merge the adapter in ``folder`` into ``model`` in place; return how many modules changed."""
    pairs, replaced = _replace_tensors(model, folder, _read_weights(folder))
    modules = dict(model.named_modules())
    for module_name, pair in pairs.items():
        _merge_pair(modules.get(module_name), module_name, pair, folder, config)
    return len(pairs) + replaced


def _read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the adapter's safetensors file; a missing, pickled or damaged file is one
    :class:`SampleError`."""
    from safetensors.torch import load_file

    weights_path = Path(folder) / ADAPTER_WEIGHTS
    if not weights_path.is_file():
        if (Path(folder) / "adapter_model.bin").is_file():
            raise SampleError(
                f"{folder} holds adapter_model.bin (pickle), which is never loaded here; save "
                "the adapter as safetensors"
            )
        raise SampleError(f"{folder} has no {ADAPTER_WEIGHTS}")
    try:
        return load_file(str(weights_path))
    except Exception as exc:  # a damaged file: one line
        raise SampleError(f"{weights_path} cannot be read ({reason(exc)})") from None


def _replace_tensors(
    model: torch.nn.Module, folder: str | Path, weights: dict[str, torch.Tensor]
) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """Copy the adapter's plain tensors (``modules_to_save``, trained biases) over the base's;
    return the LoRA pairs by module name (``{"lora_A": A, "lora_B": B}`` or the embedding
    names) and how many tensors were replaced."""
    params = dict(model.named_parameters())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    replaced = 0
    for key, tensor in weights.items():
        name = key.removeprefix(PREFIX)
        if "lora_magnitude_vector" in name:
            raise SampleError(f"{folder} is a DoRA adapter; merge it with PEFT first")
        match = re.match(r"(.*)\.(lora_A|lora_B)(?:\.[^.]+)?\.weight$", name) or re.match(
            r"(.*)\.(lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?$", name
        )
        if match:
            pairs.setdefault(match.group(1), {})[match.group(2)] = tensor
            continue
        if name not in params:
            raise SampleError(
                f"{folder}: the adapter's tensor {key} has no place in the base model; is "
                "base_model_name_or_path the model it was trained on?"
            )
        if params[name].shape != tensor.shape:
            raise SampleError(
                f"{folder}: {key} has shape {tuple(tensor.shape)}, the base's "
                f"{tuple(params[name].shape)}"
            )
        with torch.no_grad():
            params[name].copy_(tensor.to(params[name].dtype))
        replaced += 1
    return pairs, replaced


def _merge_pair(
    module: torch.nn.Module | None,
    module_name: str,
    pair: dict[str, torch.Tensor],
    folder: str | Path,
    config: dict[str, Any],
) -> None:
    """``W += B @ A * s`` for one adapted module (transposed for embeddings and
    ``fan_in_fan_out`` layers), in place."""
    if module is None or not hasattr(module, "weight"):
        raise SampleError(
            f"{folder}: the adapter adapts {module_name}, which the base model does not have; "
            "is base_model_name_or_path the model it was trained on?"
        )
    a = pair.get("lora_A", pair.get("lora_embedding_A"))
    b = pair.get("lora_B", pair.get("lora_embedding_B"))
    if a is None or b is None:
        raise SampleError(f"{folder}: {module_name} has only half of its LoRA pair")
    rank = a.shape[0]
    alpha = _pattern(config.get("alpha_pattern"), module_name, config.get("lora_alpha", 8))
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    delta = b.float() @ a.float()  # (out, in) of a linear layer
    embedding = "lora_embedding_A" in pair or isinstance(module, torch.nn.Embedding)
    if embedding or config.get("fan_in_fan_out"):  # stored as (in, out)
        delta = delta.T
    weight = cast(torch.Tensor, module.weight)  # a parameter (checked above)
    if delta.shape != weight.shape:
        raise SampleError(
            f"{folder}: the LoRA of {module_name} gives shape {tuple(delta.shape)}, the base's "
            f"is {tuple(weight.shape)}; is base_model_name_or_path the right model?"
        )
    with torch.no_grad():
        weight.add_((delta * scale).to(weight.dtype))
