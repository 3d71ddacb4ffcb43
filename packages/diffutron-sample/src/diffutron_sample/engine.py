"""The step-level sampler: many independent requests on one model, all advanced by one denoising
step per call (continuous batching), in vLLM's shape: a :class:`~diffutron_sample.scheduler.
Scheduler` owns the requests and plans each step on the host, a :class:`~diffutron_sample.runner.
Runner` executes the plan as one forward pass with every row's commits chosen at once on the
device, and the scheduler turns the outcome into :class:`StepEvent` s.

A request holds its own canvas (its prompt then ``max_new_tokens`` masks, or a text with masks to
fill), its own settings, block schedule and generator. Requests may be added between steps and
leave as soon as they are filled (or ended, with ``early_stop``) or cancelled: a request's output
never depends on what else shares its batch or when it arrived. A request whose pass fails ends
with an error; the others go on (docs/sampling.md#step-level-engine).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

import torch

from diffutron_common import reason
from diffutron_sample.config import SamplerConfig
from diffutron_sample.errors import SampleError
from diffutron_sample.masked_lm import Execution, MaskedLM
from diffutron_sample.runner import Runner
from diffutron_sample.scheduler import Request, Scheduler, StepEvent, StepPlan
from diffutron_sample.slots import CanvasSlots

__all__ = ["Engine", "Request", "StepEvent", "check_fits"]

logger = logging.getLogger(__name__)


def check_fits(length: int, limit: int | None) -> None:
    """The one context-fit rule: a canvas of ``length`` positions must fit the model's
    ``limit`` (its ``max_position_embeddings``)."""
    if limit is not None and length > limit:
        raise SampleError(
            f"prompt and generation need {length} positions but the model has {limit}; "
            "shorten the prompt or lower max_new_tokens"
        )


def check_policy_loaded(config: SamplerConfig, lm: MaskedLM) -> None:
    """``policy="learned"`` needs the model's learned commit policy loaded."""
    if config.policy == "learned" and lm.commit_policy is None:
        raise SampleError(
            "policy 'learned' needs the model's learned commit policy, and none is loaded; "
            "train one with `diffutron-train policy --model DIR` (it is loaded with the model)"
        )


class Engine:
    """Holds the model and the requests in flight; :meth:`step` advances all of them. At most
    ``max_batch`` requests share a pass (None: all); the others wait their turn in order.
    ``execution`` says how a plain Hugging Face ``model`` runs (the compiled step); a
    :class:`MaskedLM` brings its own."""

    def __init__(
        self,
        model: torch.nn.Module | MaskedLM,
        mask_token_id: int,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
        *,
        max_batch: int | None = None,
        execution: Execution | None = None,
    ):
        self.lm = model if isinstance(model, MaskedLM) else MaskedLM(model, execution=execution)
        self.mask_token_id, self.eos_token_id, self.pad_token_id = (
            mask_token_id,
            eos_token_id,
            pad_token_id,
        )
        self.slots = CanvasSlots(self.lm.device, pad_token_id)
        self.scheduler = Scheduler(
            self.slots, max_batch=max_batch, cacheable=lambda: self.lm.cacheable
        )
        self.runner = Runner(
            self.lm,
            self.slots,
            mask_token_id=mask_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
        self.passes = 0
        """Forward passes run so far (one per step that had something to commit)."""

    @property
    def model(self) -> MaskedLM:
        return self.lm

    @property
    def requests(self) -> dict[Hashable, Request]:
        return self.scheduler.requests

    @property
    def busy(self) -> bool:
        """True while some request still has masks to fill (or waits for a slot)."""
        return any(not r.done for r in self.requests.values())

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return len(self.scheduler.waiting)

    def _ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(ids, dtype=torch.long).reshape(-1).to(self.lm.device)

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
        width, size = len(ids), config.block_length
        check_policy_loaded(config, self.lm)
        check_fits(width + config.max_new_tokens, self.lm.max_positions)
        masks = torch.full((config.max_new_tokens,), self.mask_token_id, device=ids.device)
        blocks = [(width + b * size, width + (b + 1) * size) for b in range(config.num_blocks)]
        request = Request(
            request_id,
            config,
            width + config.max_new_tokens,
            width,
            blocks,
            [size] * len(blocks),
            (self.mask_token_id,),
            generator,
            stops=config.early_stop,
        )
        given = torch.cat([torch.ones_like(ids, dtype=torch.bool), masks != masks])
        return self.scheduler.add(request, torch.cat([ids, masks]), given)

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
        check_policy_loaded(config, self.lm)
        check_fits(len(canvas), self.lm.max_positions)
        flags = (canvas == self.mask_token_id).tolist()  # once, at admission
        size, blocks, remaining = config.block_length, [], []
        for start in range(0, len(canvas), size):
            count = sum(flags[start : start + size])
            if count:
                blocks.append((start, min(start + size, len(canvas))))
                remaining.append(count)
        forbidden = {self.mask_token_id}
        if pad_token_id is not None and pad_token_id != self.eos_token_id:
            forbidden.add(pad_token_id)
        request = Request(
            request_id,
            config,
            len(canvas),
            0,
            blocks,
            remaining,
            tuple(sorted(forbidden)),
            generator,
        )
        return self.scheduler.add(request, canvas, canvas != self.mask_token_id)

    def cancel(self, request_id: Hashable) -> None:
        """Drop a request (e.g. its client went away); its slot is free at the next step."""
        self.scheduler.cancel(request_id)

    def pop(self, request_id: Hashable) -> Request:
        """Take a finished (or any) request out of the engine."""
        return self.scheduler.pop(request_id)

    @torch.no_grad()
    def step(self) -> list[StepEvent]:
        """One denoising step: one forward pass over every request with something to commit.
        Returns an event for each request the step changed, finished or failed."""
        plan, events = self.scheduler.schedule()
        if plan is None:
            return events
        self.passes += 1
        try:
            output = self.runner.execute(plan)
        except Exception as exc:
            return events + self._isolate(plan, exc)
        return events + self.scheduler.update(plan, output)

    def _isolate(self, plan: StepPlan, exc: Exception) -> list[StepEvent]:
        """After a failed pass, each row runs alone: the rows that fail alone end with their
        error, the others get their step."""
        if len(plan.requests) == 1:
            return [self._failed(r, exc) for r in plan.requests]
        logger.warning("a pass of %d rows failed (%s); running each alone", len(plan.requests), exc)
        events = []
        for row, request in enumerate(plan.requests):
            alone = plan.only(row)
            try:
                events += self.scheduler.update(alone, self.runner.execute(alone))
            except Exception as again:
                events.append(self._failed(request, again))
        return events

    def _failed(self, request: Request, exc: Exception) -> StepEvent:
        if not isinstance(exc, SampleError):
            logger.error("request %r failed: %s", request.id, reason(exc), exc_info=exc)
        return self.scheduler.fail(
            request, str(exc) if isinstance(exc, SampleError) else reason(exc)
        )

    def output(self, request_id: Hashable) -> torch.Tensor:
        """The request's canvas as it stands (prompt then answer)."""
        return self.requests[request_id].canvas
