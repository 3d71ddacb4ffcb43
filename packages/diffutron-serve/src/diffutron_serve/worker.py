"""One engine loop owns the model: a thread that admits queued requests between steps (continuous
batching), advances every request by one denoising step, and hands each request's progress to
the event loop of the connection waiting for it."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, cast

from diffutron_common import reason
from diffutron_core import generator as generator_for
from diffutron_sample import Engine, Execution, StepEvent
from diffutron_serve.answers import Reader
from diffutron_serve.errors import APIError
from diffutron_serve.requests import Job
from diffutron_serve.tickets import Observer, Ticket

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


class Worker:
    """The engine thread: the bridge between the HTTP connections and the engine's scheduler,
    which denoises ``max_batch`` requests together and keeps the rest waiting in order. At most
    ``max_queue`` requests wait; the next one is refused (429). A request that cannot be admitted
    or whose step fails ends with an error and the engine goes on; should the thread itself die,
    every request in flight is failed and :attr:`failure` says why (the server answers 503)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch: int = 8,
        max_queue: int = 64,
        execution: Execution | None = None,
        observer: Observer | None = None,
    ) -> None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.engine = Engine(
            model,
            tokenizer.mask_token_id,
            tokenizer.eos_token_id,
            pad,
            max_batch=max_batch,
            execution=execution,
        )
        self.tokenizer, self.max_batch, self.max_queue = tokenizer, max_batch, max_queue
        self.observer = observer
        self.inbox: collections.deque[Ticket] = collections.deque()
        self.active: dict[int, Ticket] = {}
        self.wake = threading.Condition()
        self.ids = itertools.count()
        self.stopping = False
        self.closing: str | None = None
        self.in_hand = 0  # taken from the inbox, not yet admitted
        self.held: list[Ticket] = []
        self.closed = threading.Event()
        self.ended = 0
        self.failure: str | None = None
        self.thread = threading.Thread(target=self._run, name="diffutron-engine", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.wake:
            self.stopping = True
            self.wake.notify_all()
        self.thread.join(timeout=10)

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing waiting."""
        with self.wake:
            return not self.active and not self.inbox and not self.in_hand

    def shut(self, message: str, timeout: float = 10) -> int:
        """End every request in flight or waiting with ``("shutdown", message)`` at the engine's
        next turn; how many were ended."""
        with self.wake:
            self.closing = message
            self.wake.notify_all()
        if self.thread.is_alive():
            self.closed.wait(timeout)
        return self.ended

    def check_alive(self) -> None:
        """An :class:`APIError` (503) once the engine thread has died."""
        if self.failure is not None:
            raise APIError(
                f"the engine has stopped ({self.failure}); restart the server",
                503,
                type="server_error",
                code="engine_dead",
            )

    def load(self) -> tuple[int, int]:
        """``(waiting, active)``: requests not yet in the batch, and those in it (under the
        lock, re-entrant: the inbox is not read while the engine thread takes from it)."""
        with self.wake:
            waiting = sum(not t.cancelled.is_set() for t in self.inbox) + self.engine.waiting
            return waiting, max(0, len(self.active) - self.engine.waiting)

    def submit(self, job: Job, loop: asyncio.AbstractEventLoop) -> Ticket:
        reader = Reader(self.tokenizer, job, len(job.ids))
        ticket = Ticket(job, loop, reader, id=next(self.ids))
        with self.wake:
            self.check_alive()
            waiting, active = self.load()
            free = max(0, self.max_batch - active)
            if waiting - free >= self.max_queue:
                raise APIError(
                    f"the server is busy ({self.max_queue} requests waiting); retry shortly",
                    429,
                    type="rate_limit_error",
                    code="queue_full",
                )
            self.inbox.append(ticket)
            self.wake.notify_all()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """The client went away: its request leaves the batch at the next step."""
        ticket.cancelled.set()
        with self.wake:
            self.wake.notify_all()

    def _take(self) -> list[Ticket]:
        """The tickets that arrived since the last step (waiting for one when idle)."""
        with self.wake:
            while (
                not self.stopping
                and not self.inbox
                and not self.engine.busy
                and (self.closing is None or self.closed.is_set())
            ):
                self.wake.wait()
            taken = list(self.inbox)
            self.inbox.clear()
            self.held, self.in_hand = taken, len(taken)
        return taken

    def _add(self, ticket: Ticket) -> None:
        """Hand ``ticket``'s job to the engine; a job it refuses fails alone."""
        if ticket.cancelled.is_set():
            return
        job, engine = ticket.job, self.engine
        try:
            seed = job.seed
            random = job.config.temperature > 0 or job.config.remasking == "random"
            generator = (
                generator_for(seed, engine.lm.device) if seed is not None or random else None
            )
            if job.suffix_ids is None:
                engine.add(ticket.id, job.ids, job.config, generator=generator)
            else:
                masks = [engine.mask_token_id] * job.config.max_new_tokens
                text = [*job.ids, *masks, *job.suffix_ids]
                engine.add_infill(
                    ticket.id,
                    text,
                    job.config,
                    generator=generator,
                    pad_token_id=engine.pad_token_id,
                )
        except Exception as exc:
            logger.warning("request %d could not be admitted: %s", ticket.id, exc)
            ticket.send("error", str(exc))
            return
        ticket.start = len(job.ids)
        self.active[ticket.id] = ticket

    def _drop_cancelled(self) -> None:
        for key, ticket in list(self.active.items()):
            if ticket.cancelled.is_set():
                self.engine.cancel(key)
                del self.active[key]

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the engine itself broke: say so to everyone
            logger.exception("the engine thread died")
            with self.wake:  # no request slips in after this: submit checks under the lock
                self.failure = reason(exc) if isinstance(exc, Exception) else type(exc).__name__
                for ticket in [*self.active.values(), *self.inbox, *self.held]:
                    ticket.send("error", f"the engine has stopped ({self.failure})")
                self.active.clear()
                self.inbox.clear()
                self.held, self.in_hand = [], 0

    def _close(self, tickets: list[Ticket]) -> None:
        """Shutting down: every request ends with the reason, the waiting ones too."""
        message = cast(str, self.closing)
        for key in list(self.active):
            self.engine.cancel(key)
        for ticket in [*self.active.values(), *tickets]:
            if not ticket.cancelled.is_set():
                self.ended += 1
            ticket.send("shutdown", message)
        self.active.clear()
        self.closed.set()

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if self.closing is not None:
                self._close(taken)
                taken = []
            for ticket in taken:
                self._add(ticket)
            self.held, self.in_hand = [], 0
            if self.stopping:
                return
            self._drop_cancelled()
            if not self.engine.busy:
                continue
            started = time.monotonic()
            events = self.engine.step()
            if self.observer is not None:
                self.observer.step(time.monotonic() - started)
            for event in events:
                self._deliver(event)

    def _deliver(self, event: StepEvent) -> None:
        key = cast(int, event.id)  # every request was added under its ticket's id
        ticket = self.active.get(key)
        if ticket is None:
            return
        ticket.steps += 1
        try:
            self._report(event, ticket)
        except Exception as exc:  # reading this answer failed: it ends alone, the engine goes on
            logger.exception("request %d: its answer could not be read", key)
            if key in self.engine.requests:
                self.engine.pop(event.id)
            self.active.pop(key, None)
            ticket.send("error", f"its answer could not be read ({reason(exc)})")

    def _report(self, event: StepEvent, ticket: Ticket) -> None:
        """Sends what ``event`` made of ``ticket``'s request (the request leaves the batch once
        its end is sent)."""
        if self.observer is not None and ticket.steps == 1 and event.error is None:
            self.observer.first_token(time.monotonic() - ticket.arrived)
        if event.error is not None:
            self.engine.pop(event.id)
            del self.active[ticket.id]
            ticket.send("error", event.error)
        elif event.done:
            canvas = self.engine.requests[event.id].canvas.tolist()
            progress = ticket.reader.advance(canvas, done=True, step=ticket.steps)
            self.engine.pop(event.id)
            del self.active[ticket.id]
            ticket.final = progress.answer
            ticket.send("done", progress)
            if self.observer is not None:
                self.observer.finished(time.monotonic() - ticket.arrived)
        elif ticket.job.stream:  # only a stream shows progress
            canvas = self.engine.requests[event.id].canvas.tolist()
            progress = ticket.reader.advance(canvas, done=False, step=ticket.steps)
            if progress.delta or progress.canvas is not None:
                ticket.send("step", progress)
