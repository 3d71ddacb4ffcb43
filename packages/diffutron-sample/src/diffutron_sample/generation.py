"""The one text-generation call: prompts in, trimmed texts out.

:func:`generate_texts` is what the CLI's ``generate``, the demo,
:class:`diffutron_sample.ChatSession` and the lm-eval model call; it tokenises the prompts (chat
template or raw), pads them on the left, runs :func:`diffutron_sample.sampler.generate` and cuts
each reply at its end marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch

from diffutron_sample.config import SamplerConfig
from diffutron_sample.masked_lm import Execution, MaskedLM
from diffutron_sample.sampler import Callback, generate, infill
from diffutron_sample.text import Prompt, batch_prompt_ids, decode_new, infill_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def generate_texts(
    model: torch.nn.Module | MaskedLM,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    config: SamplerConfig,
    *,
    chat: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    execution: Execution | None = None,
) -> list[str]:
    """The reply to each of ``prompts``, generated as one batch with ``config`` and trimmed at
    the first end token or marker (:func:`diffutron_sample.text.trim`).

    Args:
        model: a masked LM (a Hugging Face model or :class:`diffutron_sample.MaskedLM`).
        tokenizer: its tokenizer (with a mask token; a chat template when ``chat``).
        prompts: see :data:`diffutron_sample.text.Prompt`; left-padded into one batch
            (:func:`diffutron_sample.text.batch_prompt_ids`).
        chat: render text prompts with the chat template (else continue them as raw text).
        generator: seeds the sampler's randomness (on the model's device).
        callback: ``callback(step, canvas)`` after every denoising step (a live view).
        execution: how it runs (``Execution(compile=True)``: the compiled step on CUDA).
    """
    input_ids, attention_mask = batch_prompt_ids(tokenizer, prompts, chat=chat)
    canvas = generate(
        model,
        input_ids,
        config,
        mask_token_id=tokenizer.mask_token_id,
        attention_mask=attention_mask,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        generator=generator,
        callback=callback,
        execution=execution,
    )
    return decode_new(tokenizer, canvas, config.max_new_tokens)


def infill_text(
    model: torch.nn.Module | MaskedLM,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    config: SamplerConfig,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    execution: Execution | None = None,
) -> tuple[str, list[int]]:
    """``(filled text, canvas ids)``: ``text`` with every mask token filled, its canvas built
    by :func:`~diffutron_sample.text.infill_ids` (the same for every door) and decoded without
    special tokens."""
    ids = torch.tensor([infill_ids(tokenizer, text)])
    canvas = infill(
        model,
        ids,
        config,
        mask_token_id=tokenizer.mask_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        generator=generator,
        callback=callback,
        execution=execution,
    )
    text = cast(str, tokenizer.decode(canvas[0], skip_special_tokens=True))  # one row: one str
    return text, canvas[0].tolist()
