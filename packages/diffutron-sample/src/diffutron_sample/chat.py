"""A multi-turn chat with a diffusion LM: history in, trimmed reply out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.generation import generate_texts
from diffutron_sample.masked_lm import MaskedLM
from diffutron_sample.sampler import Callback
from diffutron_sample.text import Messages, prompt_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


class ChatSession:
    """Keeps the conversation; each :meth:`ask` generates the assistant's next turn.

    When the history no longer fits the model's positions together with ``max_new_tokens``, the
    oldest turns are dropped (and logged) so the conversation can go on.
    """

    def __init__(
        self,
        model: torch.nn.Module | MaskedLM,
        tokenizer: PreTrainedTokenizerBase,
        config: SamplerConfig,
        *,
        system: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.system = system
        self.generator = generator
        self.history: list[dict[str, str]] = []

    def reset(self) -> None:
        self.history = []

    def set(self, key: str, value: str) -> SamplerConfig:
        """Change one sampler setting from text (``/set temperature=0.2``); anything that is not
        a valid value of a known setting is a :class:`SampleError` and changes nothing."""
        self.config = self.config.with_text(**{key: value})
        return self.config

    def set_text(self, text: str) -> tuple[str, SamplerConfig]:
        """``key=value`` (what follows ``/set``) applied: ``(key, new config)``."""
        key, sep, value = (part.strip() for part in str(text).partition("="))
        if not sep or not key:
            raise SampleError("write /set key=value, e.g. /set temperature=0.2")
        return key, self.set(key, value)

    def _messages(self, history: Messages) -> Messages:
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
        (reply,) = generate_texts(
            self.model,
            self.tokenizer,
            [ids],
            self.config,
            generator=self.generator,
            callback=callback,
        )
        self.history = [*history, {"role": "assistant", "content": reply}]
        return reply
