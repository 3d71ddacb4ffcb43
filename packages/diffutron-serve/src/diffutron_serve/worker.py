"""One engine loop owns the model: a thread that admits queued requests between steps (continuous
batching), advances every request by one denoising step, and hands each request's progress to
the event loop of the connection waiting for it."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
from dataclasses import dataclass, field

import torch

from diffutron_sample import Engine
from diffutron_serve.errors import APIError
from diffutron_serve.requests import Job

logger = logging.getLogger(__name__)


@dataclass
class Ticket:
    """A job in flight: where its updates go (an asyncio queue on the caller's loop) and whether
    its client has gone away."""

    job: Job
    loop: asyncio.AbstractEventLoop
    updates: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: int = 0
    start: int = 0
    steps: int = 0

    def send(self, kind: str, payload) -> None:
        self.loop.call_soon_threadsafe(self.updates.put_nowait, (kind, payload))


class Worker:
    """The engine thread. ``max_batch`` requests are denoised together; at most ``max_queue``
    more wait for a slot, and the next one is refused (429)."""

    def __init__(self, model, tokenizer, *, max_batch: int = 8, max_queue: int = 64):
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.engine = Engine(model, tokenizer.mask_token_id, tokenizer.eos_token_id, pad)
        self.tokenizer, self.max_batch, self.max_queue = tokenizer, max_batch, max_queue
        self.pending: collections.deque[Ticket] = collections.deque()
        self.active: dict[int, Ticket] = {}
        self.wake = threading.Condition()
        self.ids = itertools.count()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="diffutron-engine", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.wake:
            self.stopping = True
            self.wake.notify_all()
        self.thread.join(timeout=10)

    def submit(self, job: Job, loop: asyncio.AbstractEventLoop) -> Ticket:
        ticket = Ticket(job, loop, id=next(self.ids))
        with self.wake:
            self.pending = collections.deque(t for t in self.pending if not t.cancelled.is_set())
            free = max(0, self.max_batch - len(self.active))  # join at the next step
            if len(self.pending) - free >= self.max_queue:
                raise APIError(
                    f"the server is busy ({self.max_queue} requests waiting); retry shortly",
                    429,
                    type="rate_limit_error",
                    code="queue_full",
                )
            self.pending.append(ticket)
            self.wake.notify_all()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """The client went away: its request leaves the batch at the next step."""
        ticket.cancelled.set()
        with self.wake:
            self.wake.notify_all()

    def _admit(self) -> None:
        with self.wake:
            while not self.stopping and not self.pending and not self.active:
                self.wake.wait()
            while self.pending and len(self.active) < self.max_batch:
                ticket = self.pending.popleft()
                if ticket.cancelled.is_set():
                    continue
                self._add(ticket)

    def _add(self, ticket: Ticket) -> None:
        job, engine = ticket.job, self.engine
        generator = None
        if job.seed is not None:
            generator = torch.Generator(device=engine.lm.device).manual_seed(job.seed)
        elif job.config.temperature > 0 or job.config.remasking == "random":
            generator = torch.Generator(device=engine.lm.device)
            generator.seed()
        if job.suffix_ids is None:
            engine.add(ticket.id, job.ids, job.config, generator=generator)
        else:
            masks = [engine.mask_token_id] * job.config.max_new_tokens
            text = [*job.ids, *masks, *job.suffix_ids]
            engine.add_infill(
                ticket.id, text, job.config, generator=generator, pad_token_id=engine.pad_token_id
            )
        ticket.start = len(job.ids)
        self.active[ticket.id] = ticket

    def _drop_cancelled(self) -> None:
        for key, ticket in list(self.active.items()):
            if ticket.cancelled.is_set():
                self.engine.cancel(key)
                del self.active[key]

    def _run(self) -> None:
        while True:
            self._admit()
            if self.stopping:
                return
            self._drop_cancelled()
            if not self.active:
                continue
            try:
                events = self.engine.step()
            except Exception as exc:  # a failed step fails its requests, never the server
                logger.exception("a denoising step failed")
                for key, ticket in list(self.active.items()):
                    self.engine.cancel(key)
                    ticket.send("error", str(exc))
                self.active.clear()
                continue
            for event in events:
                ticket = self.active.get(event.id)
                if ticket is None:
                    continue
                ticket.steps += 1
                if event.done:
                    canvas = self.engine.pop(event.id).canvas.tolist()
                    del self.active[event.id]
                    ticket.send("done", canvas)
                elif ticket.job.stream:  # only a stream shows progress
                    ticket.send("step", self.engine.requests[event.id].canvas.tolist())
