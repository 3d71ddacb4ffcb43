"""The step-level sampler: many independent requests on one model, all advanced by one denoising
step per call (continuous batching).

A request holds its own canvas (its prompt then ``max_new_tokens`` masks, or a text with masks to
fill), its own settings, block schedule and generator. :meth:`Engine.step` runs one forward pass
over every request that has something to commit (their canvases left-padded into one batch,
positions counted from each row's first token, so a row gives what it gives alone), commits each
request's picks and reports what changed. Requests may be added between steps and leave as soon as
they are filled (or ended, with ``early_stop``) or cancelled: a request's output never depends on
what else shares its batch or when it arrived (docs/sampling.md#step-level-engine).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from diffutron_core import pad_rows
from diffutron_sample.cache import BlockCache, next_span
from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.model import MaskedLM
from diffutron_sample.proposals import Batch, propose
from diffutron_sample.schedule import Cursor, next_candidates, select_commits


@dataclass
class Request:
    """One request: its ``canvas`` (1-D, on the model's device), the tokens guidance hides
    (``given``), its settings and generator, the first column of its answer (``start``) and where
    its schedule stands."""

    id: Hashable
    canvas: torch.Tensor
    given: torch.Tensor
    config: SamplerConfig
    cursor: Cursor
    start: int
    never: torch.Tensor
    generator: torch.Generator | None = None
    stops: bool = False
    """Early stop applies (a generation request with ``early_stop``)."""
    passes: int = 0
    done: bool = False
    caches: dict[str, BlockCache] = field(default_factory=dict, repr=False)
    """With the block cache: its stored keys and values (``cond``, and ``uncond`` with
    guidance)."""


@dataclass(frozen=True)
class StepEvent:
    """What one step did to one request: the columns of its canvas it committed (prompt
    included in the count of columns) and whether it is now finished."""

    id: Hashable
    committed: tuple[int, ...]
    done: bool


@dataclass
class Engine:
    """Holds the model and the requests in flight; :meth:`step` advances all of them."""

    model: torch.nn.Module | MaskedLM
    mask_token_id: int
    eos_token_id: int | None = None
    pad_token_id: int = 0
    requests: dict[Hashable, Request] = field(default_factory=dict)
    passes: int = 0
    """Forward passes run so far (one per step that had something to commit)."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, MaskedLM):
            self.model = MaskedLM(self.model)

    @property
    def lm(self) -> MaskedLM:
        return self.model  # type: ignore[return-value]

    @property
    def busy(self) -> bool:
        """True while some request still has masks to fill."""
        return any(not r.done for r in self.requests.values())

    def _ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(ids, dtype=torch.long).reshape(-1).to(self.lm.device)

    def _fits(self, length: int) -> None:
        limit = self.lm.max_positions
        if limit is not None and length > limit:
            raise SampleError(
                f"prompt and generation need {length} positions but the model has {limit}; "
                "shorten the prompt or lower max_new_tokens"
            )

    def add(
        self,
        request_id: Hashable,
        prompt: Sequence[int] | torch.Tensor,
        config: SamplerConfig,
        *,
        generator: torch.Generator | None = None,
    ) -> Request:
        """A request to generate ``config.max_new_tokens`` tokens after ``prompt`` (token ids)."""
        ids = self._ids(prompt)
        self._fits(len(ids) + config.max_new_tokens)
        masks = torch.full((config.max_new_tokens,), self.mask_token_id, device=ids.device)
        width = len(ids)
        blocks = [
            (width + b * config.block_length, width + (b + 1) * config.block_length)
            for b in range(config.num_blocks)
        ]
        given = torch.cat([torch.ones_like(ids, dtype=torch.bool), masks != masks])
        never = torch.tensor([self.mask_token_id], device=ids.device)
        return self._register(
            Request(
                request_id,
                torch.cat([ids, masks]),
                given,
                config,
                Cursor(blocks),
                width,
                never,
                generator,
                stops=config.early_stop,
            )
        )

    def add_infill(
        self,
        request_id: Hashable,
        text: Sequence[int] | torch.Tensor,
        config: SamplerConfig,
        *,
        generator: torch.Generator | None = None,
        pad_token_id: int | None = None,
    ) -> Request:
        """A request to fill the masks of ``text`` (token ids): windows of ``block_length``
        positions, left to right, each holding masks given ``steps / num_blocks`` steps; neither
        the mask nor ``pad_token_id`` (when it is a padding id of its own) is ever written."""
        canvas = self._ids(text).clone()
        self._fits(len(canvas))
        masked = canvas == self.mask_token_id
        size = config.block_length
        blocks = [
            (start, min(start + size, len(canvas)))
            for start in range(0, len(canvas), size)
            if bool(masked[start : start + size].any())
        ]
        forbidden = {self.mask_token_id}
        if pad_token_id is not None and pad_token_id != self.eos_token_id:
            forbidden.add(pad_token_id)
        never = torch.tensor(sorted(forbidden), device=canvas.device)
        return self._register(
            Request(request_id, canvas, ~masked, config, Cursor(blocks), 0, never, generator)
        )

    def _register(self, request: Request) -> Request:
        if request.id in self.requests:
            raise SampleError(f"a request {request.id!r} is already in flight")
        self.requests[request.id] = request
        return request

    def cancel(self, request_id: Hashable) -> None:
        """Drop a request (e.g. its client went away); its slot is free at the next step."""
        self.requests.pop(request_id, None)

    def pop(self, request_id: Hashable) -> Request:
        """Take a finished (or any) request out of the engine."""
        return self.requests.pop(request_id)

    @torch.no_grad()
    def step(self) -> list[StepEvent]:
        """One denoising step: one forward pass over every request with something to commit.
        Returns an event for each request the step changed or finished."""
        ready, events = [], []
        for request in self.requests.values():
            if request.done:
                continue
            plan = next_candidates(
                request.canvas,
                request.cursor,
                request.config,
                self.mask_token_id,
                request.generator,
            )
            if plan is None:
                request.done = True
                events.append(StepEvent(request.id, (), True))
            else:
                ready.append((request, *plan))
        if ready:
            self.passes += 1
            events += self._pass(ready)
        return events

    def _pass(self, ready) -> list[StepEvent]:
        requests = [r for r, _, _ in ready]
        width = max(len(r.canvas) for r in requests)
        canvas, attention = pad_rows([r.canvas for r in requests], self.pad_token_id, side="left")
        given = pad_rows([r.given.long() for r in requests], 0, side="left")[0].bool()
        candidates = pad_rows([c.long() for _, c, _ in ready], 0, side="left")[0].bool()
        device = self.lm.device
        batch = Batch(
            canvas.to(device),
            attention.bool().to(device),
            given.to(device),
            candidates.to(device),
            [r.config for r in requests],
            [r.never for r in requests],
            [r.generator for r in requests],
            *self._spans(requests),
        )
        scores, chosen = propose(
            self.lm, batch, mask_token_id=self.mask_token_id, eos_token_id=self.eos_token_id
        )
        events = []
        for row, (request, _, count) in enumerate(ready):
            offset = width - len(request.canvas)
            counts = None if count is None else torch.tensor([count], device=device)
            commit = select_commits(scores[row : row + 1], counts, request.config.threshold)[0]
            columns = commit.nonzero(as_tuple=True)[0]
            request.canvas[columns - offset] = chosen[row, columns]
            request.passes += 1
            if request.stops:
                self._end_early(request)
            request.done = not bool(
                any(
                    (request.canvas[s:e] == self.mask_token_id).any()
                    for s, e in request.cursor.blocks
                )
            )
            events.append(StepEvent(request.id, tuple((columns - offset).tolist()), request.done))
        return events

    def _spans(self, requests: list[Request]) -> tuple[list | None, list | None]:
        """Each row's :class:`~diffutron_sample.cache.Span` (and its unconditional copy's, for a
        guided row) when some request asks for the block cache and the model can use it."""
        if not any(r.config.cache for r in requests) or not self.lm.cacheable:
            return None, None
        spans, uncond = [], []
        for request in requests:
            config, cursor = request.config, request.cursor
            where = (cursor.blocks[cursor.block], cursor.block, len(request.canvas))
            mode, every = config.cache, config.cache_interval
            spans.append(
                next_span(request.caches.setdefault("cond", BlockCache()), mode, every, *where)
            )
            guided = config.cfg_scale > 0
            store = request.caches.setdefault("uncond", BlockCache()) if guided else None
            uncond.append(next_span(store, mode, every, *where) if guided else None)
        return spans, uncond

    def _end_early(self, request: Request) -> None:
        """Early stop: once the answer holds a committed end token (eos or pad) with no mask
        before it, its remaining masks become pad."""
        region = request.canvas[request.start :]
        ends = [i for i in (self.eos_token_id, self.pad_token_id) if i is not None]
        masks = region == self.mask_token_id
        end = torch.isin(region, torch.tensor(ends, device=region.device)).nonzero()
        if len(end) and not bool(masks[: int(end[0])].any()):
            region[masks] = self.pad_token_id

    def output(self, request_id: Hashable) -> torch.Tensor:
        """The request's canvas as it stands (prompt then answer)."""
        return self.requests[request_id].canvas
