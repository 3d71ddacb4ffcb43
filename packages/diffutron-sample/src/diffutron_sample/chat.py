"""A multi-turn chat with a diffusion LM: history in, trimmed reply out."""

from __future__ import annotations

import dataclasses
import logging

from diffutron_sample.config import SampleError, SamplerConfig
from diffutron_sample.sampler import Callback, generate
from diffutron_sample.text import decode_new, prompt_ids

logger = logging.getLogger(__name__)


class ChatSession:
    """Keeps the conversation; each :meth:`ask` generates the assistant's next turn.

    When the history no longer fits the model's positions together with ``max_new_tokens``, the
    oldest turns are dropped (and logged) so the conversation can go on.
    """

    def __init__(
        self, model, tokenizer, config: SamplerConfig, *, system: str | None = None, generator=None
    ):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.system = system
        self.generator = generator
        self.history: list[dict[str, str]] = []

    def reset(self) -> None:
        self.history = []

    def set(self, key: str, value: str) -> SamplerConfig:
        """Change one sampler setting from text (``/set temperature=0.2``)."""
        fields = {f.name: f for f in dataclasses.fields(SamplerConfig)}
        if key not in fields:
            raise SampleError(f"unknown setting {key!r}; settings: {', '.join(fields)}")
        current = getattr(self.config, key)
        try:
            if value.lower() == "none" and key == "threshold":
                parsed = None
            elif isinstance(current, bool):
                parsed = {"true": True, "false": False, "1": True, "0": False}[value.lower()]
            elif key == "threshold" or isinstance(current, float):
                parsed = float(value)
            elif isinstance(current, int):
                parsed = int(value)
            else:
                parsed = value
        except (KeyError, ValueError):
            raise SampleError(f"{key} cannot be {value!r}") from None
        self.config = self.config.replace(**{key: parsed})
        return self.config

    def _messages(self, history):
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + history

    def ask(self, text: str, *, callback: Callback | None = None) -> str:
        if not text.strip():
            raise SampleError("empty message")
        history = [*self.history, {"role": "user", "content": text}]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        ids = prompt_ids(self.tokenizer, self._messages(history))
        while (
            limit is not None and len(ids) + self.config.max_new_tokens > limit and len(history) > 1
        ):
            history = history[2:]  # drop the oldest exchange
            logger.warning("the conversation is too long for the model; dropped the oldest turn")
            ids = prompt_ids(self.tokenizer, self._messages(history))
        import torch

        canvas = generate(
            self.model,
            torch.tensor([ids]),
            self.config,
            mask_token_id=self.tokenizer.mask_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id or 0,
            generator=self.generator,
            callback=callback,
        )
        reply = decode_new(self.tokenizer, canvas, self.config.max_new_tokens)[0]
        self.history = [*history, {"role": "assistant", "content": reply}]
        return reply
