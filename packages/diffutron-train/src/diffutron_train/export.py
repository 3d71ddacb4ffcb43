"""The end of a run: a plain Hugging Face model directory, and its upload to the Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffutron_common import MARKER, DiffutronError, PathError, building_folder, read_text, reason
from diffutron_common.progress import quiet_transformers
from diffutron_data import load_tokenizer
from diffutron_train.errors import TrainError
from diffutron_train.models import adapter_base, load_masked_lm, tokenizer_source


def export_model(
    model,
    tokenizer,
    output_dir: str | Path,
    *,
    sampler_config: dict[str, Any] | None = None,
    step: int | None = None,
    run_id: str | None = None,
) -> Path:
    """Write a plain Hugging Face model directory (LoRA merged in, safetensors, tokenizer with its
    chat template, and the sampler defaults as ``sampler_config.json``, the file diffutron-sample
    reads). It is built beside ``output_dir`` and replaces it in one rename; an existing
    ``output_dir`` must be a model folder Diffutron exported (never a user's folder)."""

    quiet_transformers()
    output_dir = Path(output_dir)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    try:
        with building_folder(
            output_dir, "model", option="model folder", step=step, run=run_id
        ) as tmp:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            if sampler_config is not None:
                (tmp / "sampler_config.json").write_text(
                    json.dumps(sampler_config, indent=2) + "\n", encoding="utf-8"
                )
    except PathError as exc:
        raise TrainError(str(exc)) from None
    return output_dir


def push_to_hub(model_dir: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload an exported model directory to the Hub (the token from ``hf auth login`` or
    ``HF_TOKEN``); returns the repository's URL. Never called by tests or default commands."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            folder_path=str(model_dir),
            repo_id=repo_id,
            repo_type="model",
            commit_message="Upload Diffutron model",
            ignore_patterns=[MARKER],
        )
    except Exception as exc:  # network, auth, offline mode: one line
        raise TrainError(f"--push-to-hub {repo_id}: {reason(exc)}") from None
    return str(url)


def export_adapter(
    adapter_dir: str | Path, output_dir: str | Path, *, trust_remote_code: bool = False
) -> Path:
    """Merge a LoRA adapter folder (PEFT's or dLLM's: ``adapter_config.json`` and
    ``adapter_model.safetensors``) into its base model (``base_model_name_or_path``) with PEFT
    and write the plain model folder, as :func:`export_model` does. The adapter folder's tokenizer
    and ``sampler_config.json`` win over the base's. Pickled adapters are never loaded."""

    base = adapter_base(str(adapter_dir))
    if base is None:
        raise TrainError(f"--adapter {adapter_dir} has no adapter_config.json")
    model = load_masked_lm(str(adapter_dir), trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(
        tokenizer_source(str(adapter_dir)), trust_remote_code=trust_remote_code
    )
    sampler = None
    for folder in (Path(adapter_dir), Path(base)):
        if (folder / "sampler_config.json").is_file():
            try:
                sampler = json.loads(read_text(folder / "sampler_config.json"))
            except (DiffutronError, ValueError) as exc:
                raise TrainError(f"{folder / 'sampler_config.json'}: {reason(exc)}") from None
            break
    return export_model(model, tokenizer, output_dir, sampler_config=sampler)
