"""The engine's scheduler (vLLM v1's shape): it owns the requests, their admission and where each
one's schedule stands, all on the host. :meth:`Scheduler.schedule` returns a :class:`StepPlan`
(the rows, each one's active block, commit count or rule, and cache span) without reading
the device; :meth:`Scheduler.update` turns the runner's :class:`StepOutput` into events.

Every request walks its own blocks left to right, whatever else shares its batch: LLaDA's per-block
transfer counts (docs/sampling.md#transfer-counts) or parallel commit rules
(docs/sampling.md#commit-policies), skipping steps that would commit nothing, so a request alone
takes exactly the passes it takes in any batch.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import torch

from diffutron_core import transfer_plan
from diffutron_sample.cache import Span, advance_span
from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.kvslots import BlockCache, KVSlots
from diffutron_sample.refresh import refresh_of
from diffutron_sample.slots import CanvasSlots
from diffutron_sample.traces import Trace


@dataclass
class Request:
    """One request. Host state only: its blocks (column ranges of its own canvas, filled left to
    right) and the masks left in each, the block and step it stands at, its settings and
    generator. Its canvas lives in the scheduler's :class:`CanvasSlots` (``canvas``)."""

    id: Hashable
    config: SamplerConfig
    length: int
    start: int
    """The first column of the answer (the prompt's length; 0 for infilling)."""
    blocks: list[tuple[int, int]]
    remaining: list[int]
    """Masks left in each block, kept from the committed columns every step reports."""
    never: tuple[int, ...]
    """Ids it may never propose (the mask, and pad in infilling)."""
    generator: torch.Generator | None = None
    stops: bool = False
    """Early stop applies (a generation request with ``early_stop``)."""
    block: int = 0
    step: int = 0
    planned: list[int] | None = field(default=None, repr=False)
    drawn: int | None = None
    """The commit count chosen for the next pass (kept should the pass be retried)."""
    passes: int = 0
    done: bool = False
    error: str | None = None
    caches: dict[str, BlockCache] = field(default_factory=dict, repr=False)
    """With the block cache: its stored keys and values (``cond``, and ``uncond`` with
    guidance)."""
    slot: int = -1
    pending: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    """Its canvas and given flags until it is admitted to a slot."""
    left: torch.Tensor | None = field(default=None, repr=False)
    """Its canvas as it stood when it left the engine (popped or cancelled)."""
    slots: CanvasSlots | None = field(default=None, repr=False)
    trace: Trace | None = field(default=None, repr=False)
    """Its past proposals, for the rules that read them (:mod:`diffutron_sample.traces`)."""

    @property
    def canvas(self) -> torch.Tensor:
        """Its canvas (1-D, on the model's device): the prompt, then the answer as it stands."""
        if self.left is not None:
            return self.left
        if self.slot < 0:
            assert self.pending is not None
            return self.pending[0]
        assert self.slots is not None
        return self.slots.view(self.slot, self.length)

    @property
    def threshold(self) -> float | None:
        return self.config.threshold

    @property
    def parallel(self) -> bool:
        """Whether a parallel rule commits for it (docs/sampling.md#commit-policies), not the
        schedule's counts."""
        return self.config.rule is not None


@dataclass(frozen=True)
class StepEvent:
    """What one step did to one request: the columns of its canvas it committed (prompt included
    in the count of columns), whether it is now finished, and why it failed if it did."""

    id: Hashable
    committed: tuple[int, ...]
    done: bool
    error: str | None = None


@dataclass
class StepPlan:
    """One forward pass's rows, in order, and what each needs (all host values)."""

    requests: list[Request]
    spans: list[Span] | None = None
    uncond_spans: list[Span | None] | None = None

    def only(self, row: int) -> StepPlan:
        """The plan of row ``row`` alone (a retry after a failed pass)."""
        pick = self.requests[row : row + 1]
        spans = None if self.spans is None else self.spans[row : row + 1]
        uncond = None if self.uncond_spans is None else self.uncond_spans[row : row + 1]
        return StepPlan(pick, spans, uncond)


@dataclass
class StepOutput:
    """What the runner read back from one pass: each row's committed columns (of its own
    canvas), whether early stop ended it, and a reason where its logits were not finite."""

    committed: list[list[int]]
    ended: list[bool]
    failed: list[str | None]


NOT_FINITE = (
    "the model's logits are not finite (NaN or inf); run it in float32 (--dtype float32) or "
    "with milder cfg_scale / repetition_penalty"
)


class Scheduler:
    """Owns the requests: admits up to ``max_batch`` of them (the rest wait, in order), plans
    each step and applies its outcome."""

    def __init__(
        self,
        slots: CanvasSlots,
        *,
        max_batch: int | None = None,
        cacheable: Callable[[], bool] = lambda: False,
    ):
        self.slots, self.max_batch, self.cacheable = slots, max_batch, cacheable
        """``cacheable()``: whether the model can run the block cache (asked only when a row
        wants it, so a model that cannot is said so only then)."""
        self.requests: dict[Hashable, Request] = {}
        self.waiting: collections.deque[Hashable] = collections.deque()
        self.stored = {"cond": KVSlots(), "uncond": KVSlots()}
        """The block cache's buffers: each request's keys and values in a row of one tensor (its
        unconditional copy's, under guidance, in the other)."""

    def add(self, request: Request, canvas: torch.Tensor, given: torch.Tensor) -> Request:
        if request.id in self.requests:
            raise SampleError(f"a request {request.id!r} is already in flight")
        request.pending, request.slots = (canvas, given), self.slots
        self.requests[request.id] = request
        self.waiting.append(request.id)
        self._admit()
        return request

    def _admit(self) -> None:
        running = sum(1 for r in self.requests.values() if r.slot >= 0 and not r.done)
        while self.waiting and (self.max_batch is None or running < self.max_batch):
            request = self.requests.get(self.waiting.popleft())
            if request is None or request.pending is None:
                continue  # cancelled while it waited
            request.slot = self.slots.place(*request.pending)
            request.pending = None
            running += 1

    def cancel(self, request_id: Hashable) -> Request | None:
        """Drop a request (e.g. its client went away); its slot is free for the next step."""
        request = self.requests.pop(request_id, None)
        for store in [] if request is None else request.caches.values():
            store.release()
        if request is not None and request.slot >= 0:
            request.left = request.canvas.clone()  # what it holds, once its row is reused
            self.slots.release(request.slot)
            request.slot = -1
        return request

    def schedule(self) -> tuple[StepPlan | None, list[StepEvent]]:
        """The next pass's plan (None when no request has anything to commit) and the events of
        requests found finished without one."""
        self._admit()
        rows, events = [], []
        for request in self.requests.values():
            if request.done or request.slot < 0:
                continue
            if self._ready(request):
                rows.append(request)
            else:
                request.done = True
                events.append(StepEvent(request.id, (), True))
        if not rows:
            return None, events
        return StepPlan(rows, *self._spans(rows)), events

    def _ready(self, request: Request) -> bool:
        """Move ``request``'s cursor to its next pass that commits something; False when every
        block is filled."""
        config = request.config
        if config.rule is not None:  # the first block that still has masks
            while request.block < len(request.blocks) and not request.remaining[request.block]:
                request.block += 1
            return request.block < len(request.blocks)
        per_block = config.steps // config.num_blocks
        while request.block < len(request.blocks):
            if request.planned is None:
                request.planned = transfer_plan(request.remaining[request.block], per_block)
            if request.step >= per_block or not request.remaining[request.block]:
                request.block, request.step, request.planned = request.block + 1, 0, None
                continue
            if request.drawn is None:
                request.drawn = _commit_count(request, per_block)
            if request.drawn > 0:
                return True
            request.step, request.drawn = request.step + 1, None  # a step that commits nothing
        return False

    def _spans(self, rows: list[Request]) -> tuple[list[Span] | None, list[Span | None] | None]:
        """Each row's :class:`Span` (and its unconditional copy's, for a guided row) when some
        row asks for the block cache and the model can use it."""
        if not any(r.config.cache for r in rows) or not self.cacheable():
            return None, None
        spans: list[Span] = []
        uncond: list[Span | None] = []
        for request in rows:
            config = request.config
            where = (request.blocks[request.block], request.block, request.length)
            rule = (config.cache, config.cache_interval, *where, refresh_of(config)[1])
            delayed = config.cache_delayed
            spans.append(advance_span(self._store(request, "cond"), *rule, delayed))
            guided = config.cfg_scale > 0
            store = self._store(request, "uncond") if guided else None
            uncond.append(advance_span(store, *rule, delayed) if guided else None)
        return spans, uncond

    def _store(self, request: Request, kind: str) -> BlockCache:
        """``request``'s block cache ``kind`` (``cond`` or ``uncond``), bound to its buffer."""
        if kind not in request.caches:
            request.caches[kind] = BlockCache(slots=self.stored[kind])
        return request.caches[kind]

    def update(self, plan: StepPlan, output: StepOutput) -> list[StepEvent]:
        """Apply one pass's outcome to its requests; an event for each."""
        events = []
        for row, request in enumerate(plan.requests):
            why = output.failed[row]
            if why is not None:
                events.append(self.fail(request, why))
                continue
            committed = output.committed[row]
            if request.config.cache_delayed:
                for store in request.caches.values():
                    store.unsettled.update(committed)
            request.passes += 1
            request.remaining[request.block] -= len(committed)
            if request.config.rule is None:
                request.step, request.drawn = request.step + 1, None
            if output.ended[row]:
                request.remaining = [0] * len(request.remaining)
            request.done = not any(request.remaining)
            events.append(StepEvent(request.id, tuple(committed), request.done))
        return events

    def fail(self, request: Request, why: str) -> StepEvent:
        """End ``request`` with an error; the others go on."""
        request.done, request.error = True, why
        return StepEvent(request.id, (), True, why)

    def pop(self, request_id: Hashable) -> Request:
        """Take a finished (or any) request out; its canvas is kept, its slot freed."""
        request = self.requests[request_id]
        self.cancel(request_id)
        return request


def _commit_count(request: Request, per_block: int) -> int:
    """How many masks ``request`` commits this step: the schedule's planned count, or with
    ``stochastic_transfer`` a binomial draw of what is left (all of it at the last step)."""
    assert request.planned is not None
    planned = request.planned[request.step]
    if not request.config.stochastic_transfer:
        return planned
    remaining, steps_left = request.remaining[request.block], per_block - request.step
    if steps_left == 1:
        return remaining
    draw = torch.binomial(
        torch.tensor([float(remaining)], dtype=torch.float64),
        torch.tensor([1 / steps_left], dtype=torch.float64),
        generator=request.generator,
    )
    return int(draw.item())
