"""The served model's life: it loads in the background while the server already answers its
probes, serves, and drains (no new requests, those in flight finished or cancelled) before the
process exits."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Unpack, cast

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from diffutron_common import reason
from diffutron_sample import SamplerConfig, freeze_heap
from diffutron_serve import replies
from diffutron_serve.answers import Progress
from diffutron_serve.errors import APIError, bad_request
from diffutron_serve.metrics import Metrics
from diffutron_serve.requests import Job, check_fits, parse_json
from diffutron_serve.tickets import Limits, Ticket
from diffutron_serve.worker import Worker

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""Request bodies larger than 1 MiB are refused (413)."""

Loader = Callable[[], "tuple[PreTrainedModel, PreTrainedTokenizerBase]"]

Builder = Callable[
    [dict[str, Any], "PreTrainedTokenizerBase", SamplerConfig, str, "int | None"], Job
]
"""A body to the engine's job (:func:`~diffutron_serve.requests.chat_job` or
:func:`~diffutron_serve.requests.completion_job`)."""

LOADING, READY, DRAINING, FAILED = "loading", "ready", "draining", "failed"
CLIENT_GONE = 499
"""The status counted for a request whose client left before its answer (nginx's)."""


class Server:
    """The model, its tokenizer and sampler defaults, and the engine loop. :attr:`state` is
    ``"loading"`` until :meth:`load` has made the engine, then ``"ready"``; ``"failed"`` when the
    load failed, ``"draining"`` from :meth:`drain` on."""

    def __init__(
        self,
        loader: Loader,
        defaults: SamplerConfig,
        name: str,
        *,
        policy: Callable[[Any], Any] | None = None,
        freeze: bool = False,
        **limits: Unpack[Limits],
    ) -> None:
        self.loader, self.defaults, self.name, self.limits = loader, defaults, name, limits
        self.policy = policy
        """``policy(tokenizer)``: the model's learned commit policy, or None."""
        self.freeze = freeze
        """Whether the load ends with :func:`diffutron_sample.freeze_heap` (a process that only
        serves: ``diffutron-serve``); given back when the engine stops."""
        self.state = LOADING
        self.failure: str | None = None
        self.worker: Worker | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.limit: int | None = None
        self.created = int(time.time())
        self.loaded = threading.Event()
        self.changing = threading.Lock()  # the load and the drain change the state
        self.metrics = Metrics(lambda: self.worker)

    def load(self) -> None:
        """Load the model and start the engine loop (in a thread of its own: the probes answer
        meanwhile); a failure is kept in :attr:`failure`, said once in the log."""
        try:
            model, tokenizer = self.loader()
            worker = Worker(model, tokenizer, observer=self.metrics, **self.limits)
            if self.policy is not None:
                worker.engine.lm.commit_policy = self.policy(tokenizer)
            if self.freeze:  # as vLLM: no full collection walks the model while serving
                freeze_heap()
            worker.start()
        except Exception as exc:  # said to every caller, never a crash of the server
            with self.changing:
                self.failure = reason(exc)
                self.state = FAILED
            logger.error("the model failed to load: %s", self.failure)
        else:
            with self.changing:  # a drain that begins now sees the worker, or none at all
                self.tokenizer, self.worker = tokenizer, worker
                self.limit = getattr(model.config, "max_position_embeddings", None)
                if self.state == LOADING:
                    self.state = READY
        finally:
            self.loaded.set()

    def stop(self) -> None:
        """Stop the engine loop; what the load froze (``freeze``) can be collected again."""
        if self.worker is not None:
            self.worker.stop()
        if self.freeze:
            gc.unfreeze()

    def start_loading(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="diffutron-load", daemon=True)
        thread.start()
        return thread

    def health(self) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of ``GET /health``: 200 unless the load failed or the engine
        thread died."""
        dead = self.worker.failure if self.worker is not None else None
        if self.state == FAILED or dead is not None:
            why = self.failure if dead is None else f"the engine has stopped ({dead})"
            return 503, {"status": "failed", "reason": why}
        return 200, {"status": self.state}

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of ``GET /ready``: 200 only when it serves requests."""
        status, body = self.health()
        if status == 200 and self.state != READY:
            status = 503
        return status, body

    def serving(self) -> tuple[Worker, PreTrainedTokenizerBase]:
        """The engine loop and tokenizer, or the 503 that says why there is none to use."""
        if self.state == LOADING:
            raise APIError("the model is still loading; retry shortly", 503, code="model_loading")
        if self.state == FAILED:
            message = f"the model failed to load ({self.failure}); fix it and restart the server"
            raise APIError(message, 503, type="server_error", code="model_load_failed")
        if self.state == DRAINING:
            message = "the server is shutting down; send the request to another replica"
            raise APIError(message, 503, code="shutting_down")
        worker, tokenizer = cast(Worker, self.worker), self.tokenizer
        worker.check_alive()  # a balancer must not send traffic to a dead engine
        return worker, cast("PreTrainedTokenizerBase", tokenizer)

    def drain(self, timeout: float) -> int:
        """Refuse new requests from now on, let those in flight finish for up to ``timeout``
        seconds and end the rest with a 503; how many were ended."""
        with self.changing:
            if self.state != FAILED:
                self.state = DRAINING
            worker = self.worker
        if worker is None:  # still loading (it will not serve now) or failed: nothing in flight
            return 0
        deadline = time.monotonic() + timeout
        while not worker.idle and time.monotonic() < deadline:
            time.sleep(0.02)
        return worker.shut(
            "the server shut down before this request finished; send it again to another replica"
        )

    async def body(self, request: Request) -> dict[str, Any]:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY:
            raise APIError(f"the request body is over {MAX_BODY} bytes", 413, code="too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise APIError(f"the request body is over {MAX_BODY} bytes", 413, code="too_large")
        return parse_json(bytes(body))

    async def run(self, request: Request, build: Builder, kind: str) -> Response:
        """Answers ``request``: its body made into a job by ``build`` (``chat_job`` or
        ``completion_job``), run on the engine, its answer whole or streamed."""
        worker, tokenizer = self.serving()
        data = await self.body(request)
        job = build(data, tokenizer, self.defaults, self.name, self.limit)
        check_fits(job, self.limit)
        if job.config.policy == "learned" and worker.engine.lm.commit_policy is None:
            raise bad_request(
                "this model has no learned commit policy; train one with `diffutron-train "
                "policy --model DIR` and restart the server, or leave 'policy' unset",
                param="policy",
            )
        ticket = worker.submit(job, asyncio.get_running_loop())
        reply_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        if job.stream:
            return StreamingResponse(
                self._stream(worker, ticket, reply_id, kind),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        progress = await self._wait(worker, request, ticket)
        if progress is None:  # the client left: nobody reads this, the metrics count a 499
            return Response(status_code=CLIENT_GONE)
        answer = progress.answer
        self.metrics.answered(len(job.ids), answer.tokens)
        return JSONResponse(replies.reply(answer, reply_id, kind, job, self.name))

    async def _wait(self, worker: Worker, request: Request, ticket: Ticket) -> Progress | None:
        """The request's end, or None once its client has left (the request leaves the batch)."""
        try:
            while True:
                try:
                    update = await asyncio.wait_for(ticket.updates.get(), timeout=0.25)
                except TimeoutError:
                    if await request.is_disconnected():
                        worker.cancel(ticket)
                        return None
                    continue
                error = replies.failure(update)
                if error is not None:
                    raise error
                if update[0] == "done":
                    return cast(Progress, update[1])
        except BaseException:
            worker.cancel(ticket)
            raise

    async def _stream(
        self, worker: Worker, ticket: Ticket, reply_id: str, kind: str
    ) -> AsyncIterator[str]:
        try:
            async for event in replies.events(ticket, reply_id, kind, self.name):
                yield event
            final = ticket.final
            if final is not None:
                self.metrics.answered(len(ticket.job.ids), final.tokens)
        finally:
            worker.cancel(ticket)  # a no-op for a finished request; frees a dropped one
