"""A masked LM seen as *backbone* (hidden states of every position) and *head* (logits of the rows
asked for), so a sampler runs the vocabulary projection only where it needs logits, with the
execution choices (the compiled step and its shape buckets) passed in, never attached to the
Hugging Face module.

For mmBERT the 256k-vocabulary output layer is about 63% of a forward pass; a denoising step needs
logits only at the still-masked positions of the active block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import torch

from diffutron_sample.cache import Span, cached_states, usable
from diffutron_sample.compiled import CompiledLayers, compile_blocker, say_once
from diffutron_sample.errors import SampleError

logger = logging.getLogger(__name__)

Where = tuple[torch.Tensor, torch.Tensor]
"""``(rows, positions)`` index pairs into a ``(B, L)`` batch."""


@dataclass(frozen=True)
class Execution:
    """How passes run, chosen by the caller: ``compile`` runs every pass of a ModernBERT model on
    CUDA through ``torch.compile`` with bucketed shapes (docs/sampling.md#compiled-step;
    elsewhere the log says why once and it runs eagerly). ``compiler`` replaces
    ``torch.compile``'s function (tests)."""

    compile: bool = False
    compiler: Any = None


class MaskedLM:
    """Wraps a Hugging Face masked LM.

    ModernBERT-style models (``model.model`` backbone, ``model.head`` and ``model.decoder``) get a
    restricted head; any other masked LM falls back to full logits, gathered afterwards.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        restrict_head: bool = True,
        execution: Execution | None = None,
        commit_policy: Any = None,
    ):
        self.model = model
        self.commit_policy = commit_policy
        """The model's learned commit policy (a :class:`~diffutron_sample.learned.CommitPolicy`),
        for ``policy="learned"``; None when it has none loaded."""
        self.execution = execution or Execution()
        parts = ("model", "head", "decoder")
        self.splittable = all(hasattr(model, p) for p in parts)
        self.restrict_head = restrict_head and self.splittable
        self.forward_passes = 0
        self._cacheable: bool | None = None
        self.positions_run = 0
        """Canvas positions run through the backbone so far (a full pass runs every one; a
        cached pass only those it recomputes)."""
        self.positions_full = 0
        """What those passes would have run without the cache: their whole canvases."""
        self.refreshes = 0
        """Rows whose block cache was refreshed (a full pass over the row, kept for the next
        steps)."""
        self.layers = self._compiled() if self.execution.compile else None

    def _compiled(self) -> CompiledLayers | None:
        """The compiled layers, or None (said once) where they cannot run."""
        why = None if self.execution.compiler is not None else compile_blocker(self.model)
        if why is None and not self.restrict_head:
            why = "the compiled step needs a model whose output layer can be split off"
        if why is not None:
            say_once(why)
            return None
        return CompiledLayers(self.execution.compiler)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_positions(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    @property
    def cacheable(self) -> bool:
        """Whether the block cache can run this model (said once in the log when it cannot)."""
        if self._cacheable is None:
            self._cacheable = usable(self.model) and self.restrict_head
        return self._cacheable

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None,
        spans: list[Span] | None = None,
    ) -> torch.Tensor:
        """``(B, L, H)`` backbone states. With ``spans`` (one
        :class:`~diffutron_sample.cache.Span` per row) the block cache computes each row's span
        only: states elsewhere are zeros. With the compiled step every pass runs through it."""
        if not self.restrict_head:
            raise SampleError("this model's output layer cannot be split off: use logits_at")
        self.forward_passes += 1
        lengths = attention_mask.sum(1).tolist()
        self.positions_full += sum(lengths)
        if spans is None and self.layers is not None:
            spans = [Span(None, 0, length, True) for length in lengths]
        if spans is None:
            self.positions_run += sum(lengths)
            backbone = cast(torch.nn.Module, self.model.model)  # checked by `splittable`
            states: torch.Tensor = backbone(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
            ).last_hidden_state
            return states
        self.positions_run += sum(
            length if s.refresh else s.end - s.start - len(s.skip or ())
            for length, s in zip(lengths, spans, strict=True)
        )
        self.refreshes += sum(s.refresh and s.store is not None for s in spans)
        if position_ids is None:  # as the Hugging Face model counts them when not given
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)
            position_ids = position_ids.expand_as(input_ids)
        if self.layers is None:
            return cached_states(
                self.model, input_ids, attention_mask, position_ids, spans, meter=self
            )
        return cached_states(
            self.model,
            input_ids,
            attention_mask,
            position_ids,
            spans,
            layers=self.layers,
            buckets=self.layers.buckets,
            meter=self,
        )

    def head_logits(self, states: torch.Tensor, where: Where) -> torch.Tensor:
        """``(M, V)`` float32 logits of the output layer at the pairs ``where`` of ``states``."""
        head = cast(torch.nn.Module, self.model.head)  # both checked by `splittable`
        decoder = cast(torch.nn.Module, self.model.decoder)
        length, width = states.shape[1], states.shape[2]
        picked = states.reshape(-1, width).index_select(0, where[0] * length + where[1])
        logits: torch.Tensor = decoder(head(picked))  # index_select: states[where], faster
        return logits.float()

    def logits_at(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None,
        where: Where,
        spans: list[Span] | None = None,
    ) -> torch.Tensor:
        """``(M, V)`` float32 logits at the ``(row, position)`` pairs ``where`` of one forward
        pass: the output layer run at those positions only where it can be split off, else the
        full logits gathered."""
        if self.restrict_head:
            states = self.hidden_states(input_ids, attention_mask, position_ids, spans)
            return self.head_logits(states, where)
        self.forward_passes += 1
        lengths = int(attention_mask.sum())
        self.positions_full += lengths
        self.positions_run += lengths
        logits: torch.Tensor = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).logits
        return logits[where].float()
