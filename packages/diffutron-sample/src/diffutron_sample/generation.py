"""The one text-generation call: prompts in, trimmed texts out.

:func:`generate_texts` is what the CLI's ``generate``, the demo, :class:`ChatSession` and the
lm-eval model call; it tokenises the prompts (chat template or raw), pads them on the left, runs
:func:`diffutron_sample.sampler.generate` and cuts each reply at its end marker.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffutron_core import pad_rows
from diffutron_sample.config import SamplerConfig
from diffutron_sample.sampler import Callback, generate
from diffutron_sample.text import Messages, decode_new, prompt_ids

Prompt = str | Messages | Sequence[int]
"""A prompt: text (a user turn, or raw text with ``chat=False``), a message list, or token ids
already made (used as they are)."""


def _is_ids(prompt: Prompt) -> bool:
    return not isinstance(prompt, str) and all(isinstance(t, int) for t in prompt) and bool(prompt)


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    config: SamplerConfig,
    *,
    chat: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> list[str]:
    """The reply to each of ``prompts``, generated as one batch with ``config`` and trimmed at
    the first end token or marker (:func:`diffutron_sample.text.trim`).

    Args:
        model: a masked LM (a Hugging Face model or :class:`diffutron_sample.MaskedLM`).
        tokenizer: its tokenizer (with a mask token; a chat template when ``chat``).
        prompts: see :data:`Prompt`; they are left-padded into one batch.
        chat: render text prompts with the chat template (else continue them as raw text).
        generator: seeds the sampler's randomness (on the model's device).
        callback: ``callback(step, canvas)`` after every denoising step (a live view).
    """
    rows = [list(p) if _is_ids(p) else prompt_ids(tokenizer, p, chat=chat) for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids, attention_mask = pad_rows(rows, pad, side="left")
    canvas = generate(
        model,
        input_ids,
        config,
        mask_token_id=tokenizer.mask_token_id,
        attention_mask=attention_mask,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        generator=generator,
        callback=callback,
    )
    return decode_new(tokenizer, canvas, config.max_new_tokens)
