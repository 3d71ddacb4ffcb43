"""LoRA adapter folders (PEFT's and dLLM's layout): how to recognise one and where its base model
and tokenizer are. The merging itself lives with each package (without PEFT in diffutron-sample,
with it in diffutron-train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeGuard

from diffutron_common.errors import DiffutronError
from diffutron_common.paths import looks_like_path
from diffutron_common.text import read_text

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class AdapterError(DiffutronError):
    """An adapter folder that cannot be used, in one line."""


def is_adapter_folder(path: str | Path | None) -> TypeGuard[str | Path]:
    return path is not None and (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_config(folder: str | Path) -> dict[str, Any]:
    """The folder's ``adapter_config.json``, checked to name a base model."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        config = json.loads(read_text(path, what="adapter config"))
    except DiffutronError as exc:
        raise AdapterError(str(exc)) from None
    except ValueError as exc:
        raise AdapterError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{path} must hold a JSON object")
    base = config.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise AdapterError(f"{path} names no base model (base_model_name_or_path)")
    return config


def adapter_base(folder: str | Path) -> str:
    """The adapter's base model: a folder as written, or beside the adapter when the path is
    relative and not found from here; otherwise a Hub id."""
    base: str = adapter_config(folder)["base_model_name_or_path"]  # checked to be a str
    beside = Path(folder) / base
    if Path(base).exists() or Path(base).is_absolute():
        found = base
    else:
        found = str(beside) if beside.exists() else base
    if looks_like_path(base) and not Path(found).exists():
        where = base if Path(base).is_absolute() else f"{base} (nor {beside})"
        raise AdapterError(
            f"the base model folder {where} of the adapter {folder} is not found; fix "
            f"base_model_name_or_path in {Path(folder) / ADAPTER_CONFIG}"
        )
    return found


def tokenizer_source(name_or_path: str) -> str:
    """Where a model's tokenizer is: the folder itself, or, for an adapter folder without
    tokenizer files, its base model."""
    if not is_adapter_folder(name_or_path):
        return name_or_path
    if any((Path(name_or_path) / name).is_file() for name in TOKENIZER_FILES):
        return name_or_path
    return adapter_base(name_or_path)
