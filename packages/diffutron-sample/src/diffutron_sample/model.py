"""Loading a masked LM to sample from (a model folder, a Hub id or a LoRA adapter folder) and the
device and dtype it runs on. The wrapper the sampler runs it through is
:class:`~diffutron_sample.masked_lm.MaskedLM`."""

from __future__ import annotations

import atexit
import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from diffutron_common import DiffutronError, check_model_source, reason
from diffutron_common.adapters import tokenizer_source
from diffutron_common.chat import DLLM_BERT_CHAT_TEMPLATE
from diffutron_common.progress import quiet_transformers
from diffutron_sample.adapters import (
    adapter_base,
    is_adapter_folder,
    merge_adapter,
    read_adapter_config,
)
from diffutron_sample.errors import SampleError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)
DTYPES = ("float32", "bfloat16", "float16")


def available_devices() -> list[str]:
    """The devices torch sees here, as ``--device`` takes them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` checked against what torch sees (``None`` or ``"auto"``: CUDA when present,
    else the CPU); an unknown or absent device is one :class:`SampleError` listing the ones
    there are."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    known = ", ".join(available_devices())
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise SampleError(f"unknown device {str(device)!r}; torch sees: {known}") from None
    if parsed.type == "cpu":
        return parsed
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise SampleError(f"device {str(device)!r} is not available; torch sees: {known}")
        return parsed
    if parsed.type == "mps" and "mps" in known:
        return parsed
    raise SampleError(f"device {str(device)!r} is not available; torch sees: {known}")


def _load_pretrained(
    name_or_path: str,
    *,
    what: str,
    dtype: torch.dtype,
    trust_remote_code: bool,
    tokenizer_from: str,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` as transformers loads them, each failure one :class:`SampleError`."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_from, trust_remote_code=trust_remote_code
        )
        model = AutoModelForMaskedLM.from_pretrained(
            name_or_path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # OSError, ValueError, HF hub errors: one line for the user
        where = "directory" if Path(name_or_path).exists() else "model"
        hint = (
            "; it ships its own code: pass --trust-remote-code if you trust it"
            if "trust_remote_code" in str(exc) and not trust_remote_code
            else ""
        )
        raise SampleError(
            f"cannot load {what}{where} {name_or_path!r}: {reason(exc)}{hint}"
        ) from None
    return model, tokenizer


def load_model(
    name_or_path: str,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    chat_template: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` from a model directory, a Hub id or a LoRA adapter folder, in eval
    mode.

    * Weights load from safetensors only; code shipped with a Hub model runs only with
      ``trust_remote_code``.
    * An adapter folder (``adapter_config.json`` and ``adapter_model.safetensors``, as PEFT and
      dLLM save them) loads its base model from ``base_model_name_or_path`` and is merged into
      it (:mod:`diffutron_sample.adapters`); its own tokenizer files win over the base's.
    * A tokenizer without a chat template gets dLLM's BERT chat format, said once in the log;
      ``chat_template`` (a Jinja template's text) replaces whatever the tokenizer has.
    * ``device`` defaults to CUDA when present, else CPU (an unknown one is a
      :class:`SampleError`); ``dtype`` to bfloat16 on CUDA and float32 on CPU.
    * How it runs (the compiled step) is the caller's choice, given to what runs it:
      ``Execution(compile=True)`` (:class:`~diffutron_sample.masked_lm.Execution`).
    """

    quiet_transformers()

    target = resolve_device(device)
    dtype = _resolve_dtype(dtype, target)
    try:
        check_model_source(name_or_path)
    except DiffutronError as exc:
        raise SampleError(str(exc)) from None
    if is_adapter_folder(name_or_path):
        model, tokenizer = _load_adapter(
            Path(name_or_path), dtype=dtype, trust_remote_code=trust_remote_code
        )
    else:
        model, tokenizer = _load_pretrained(
            name_or_path,
            what="",
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            tokenizer_from=name_or_path,
        )
    if tokenizer.mask_token_id is None:
        raise SampleError(f"tokenizer of {name_or_path!r} has no mask token; it cannot be sampled")
    _set_chat_template(tokenizer, chat_template, name_or_path)
    module: torch.nn.Module = model  # transformers wraps `to` in a way mypy cannot bind
    moved = module.to(target).eval()  # the model itself, moved and in eval mode
    return cast("PreTrainedModel", moved), tokenizer


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype: by default bfloat16 on CUDA and float32 elsewhere; an unknown
    name is a :class:`SampleError`."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise SampleError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        named: torch.dtype = getattr(torch, dtype)  # one of DTYPES
        return named
    return dtype


def _load_adapter(
    folder: Path, *, dtype: torch.dtype, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)``: the adapter's base model with the adapter merged in, and the
    adapter's own tokenizer when it has one (else the base's)."""

    adapter = read_adapter_config(folder)
    base = adapter_base(folder)
    model, tokenizer = _load_pretrained(
        base,
        what="the base model of the adapter (base_model_name_or_path in "
        f"{folder / 'adapter_config.json'}): ",
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        tokenizer_from=tokenizer_source(str(folder)),
    )
    changed = merge_adapter(model, folder, adapter)
    logger.info("merged the adapter %s (%d modules) into %s", folder, changed, base)
    return model, tokenizer


def _set_chat_template(
    tokenizer: PreTrainedTokenizerBase, chat_template: str | None, name_or_path: str
) -> None:
    """Give ``tokenizer`` the ``chat_template`` asked for, or dLLM's BERT chat format when it has
    none (said once in the log)."""

    if chat_template is not None:
        tokenizer.chat_template = chat_template
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DLLM_BERT_CHAT_TEMPLATE
        logger.warning(
            "%s has no chat template: using dLLM's BERT chat format ([Question] … [/Question] "
            "[Answer] … [/Answer]; --chat-template FILE to give another)",
            name_or_path,
        )


def freeze_heap() -> None:
    """Collect once, then take every object alive now (the model, the tokenizer, the imported
    libraries: some 430,000 objects with transformers) out of the garbage collector's sight
    (``gc.freeze``), as vLLM's engine does after its start-up. Without it, each full collection
    while generating walks them all: a pause of about 180 ms on the CPU machine (one came in a
    64-step run at batch 16 of the demo model). Called by ``diffutron-serve`` and
    ``diffutron-sample`` once the model is loaded; a program embedding the engine calls it once
    its own start-up is done. Those objects are not collected until ``gc.unfreeze``, which runs
    at exit (so that extension modules that count their objects at shutdown, such as triton's,
    find none left over)."""
    gc.collect()
    gc.freeze()
    atexit.unregister(gc.unfreeze)  # once, however often it is called
    atexit.register(gc.unfreeze)
