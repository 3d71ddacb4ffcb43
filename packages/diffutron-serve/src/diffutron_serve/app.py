"""The HTTP server: OpenAI's ``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``
(with ``suffix`` infilling), streamed or not, over one engine loop, and the page at ``/``."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack, cast

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from diffutron_sample import Execution, SampleError, SamplerConfig, load_model
from diffutron_sample.text import Answer
from diffutron_serve.answers import Reader
from diffutron_serve.errors import APIError
from diffutron_serve.requests import Job, chat_job, check_fits, completion_job, parse_json
from diffutron_serve.worker import Limits, Ticket, Worker

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""Request bodies larger than 1 MiB are refused (413)."""
STATIC = Path(str(files("diffutron_serve") / "static"))
Body = dict[str, Any]  # a JSON object: a request's body, a reply or a part of one
CallNext = Callable[[Request], Awaitable[Response]]


class Server:
    """The model, its tokenizer and sampler defaults, and the engine loop."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        defaults: SamplerConfig,
        name: str,
        **limits: Unpack[Limits],
    ) -> None:
        self.tokenizer, self.defaults, self.name = tokenizer, defaults, name
        self.limit = getattr(model.config, "max_position_embeddings", None)
        self.worker = Worker(model, tokenizer, **limits)
        self.created = int(time.time())

    async def body(self, request: Request) -> Body:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY:
            raise APIError(f"the request body is over {MAX_BODY} bytes", 413, code="too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise APIError(f"the request body is over {MAX_BODY} bytes", 413, code="too_large")
        return parse_json(bytes(body))

    async def run(self, request: Request, job: Job, kind: str) -> Response:
        check_fits(job, self.limit)
        ticket = self.worker.submit(job, asyncio.get_running_loop())
        reader = Reader(self.tokenizer, job, len(job.ids))
        reply_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        if job.stream:
            return StreamingResponse(
                self._stream(request, ticket, reader, reply_id, kind),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        canvas = await self._wait(request, ticket)
        return JSONResponse(self._reply(reader, canvas, reply_id, kind, job))

    async def _wait(self, request: Request, ticket: Ticket) -> list[int]:
        try:
            while True:
                try:
                    kind, payload = await asyncio.wait_for(ticket.updates.get(), timeout=0.25)
                except TimeoutError:
                    if await request.is_disconnected():
                        raise asyncio.CancelledError from None
                    continue
                if kind == "done":
                    return cast(list[int], payload)  # "done" carries the canvas
                if kind == "error":
                    raise APIError(f"generation failed: {payload}", 500, type="server_error")
        except BaseException:
            self.worker.cancel(ticket)
            raise

    def _usage(self, job: Job, answer: Answer) -> dict[str, int]:
        return {
            "prompt_tokens": len(job.ids),
            "completion_tokens": answer.tokens,
            "total_tokens": len(job.ids) + answer.tokens,
        }

    def _reply(self, reader: Reader, canvas: list[int], reply_id: str, kind: str, job: Job) -> Body:
        answer = reader.read(canvas, done=True)
        choice: Body = {"index": 0, "finish_reason": answer.finish_reason, "logprobs": None}
        if kind == "chat":
            choice["message"] = {"role": "assistant", "content": answer.text}
        else:
            choice["text"] = answer.text
        return {
            "id": reply_id,
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [choice],
            "usage": self._usage(job, answer),
        }

    def _chunk(
        self, reply_id: str, kind: str, text: str | None, reason: str | None, first: bool
    ) -> Body:
        choice: Body
        if kind == "chat":
            delta = {"role": "assistant"} if first else {}
            if text:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
            obj = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": reason, "logprobs": None}
            obj = "text_completion"
        return {
            "id": reply_id,
            "object": obj,
            "created": int(time.time()),
            "model": self.name,
            "choices": [choice],
        }

    async def _stream(
        self, request: Request, ticket: Ticket, reader: Reader, reply_id: str, kind: str
    ) -> AsyncIterator[str]:
        sent, first, job = "", True, ticket.job
        try:
            while True:
                step, payload = await ticket.updates.get()
                if step == "error":
                    error = APIError(f"generation failed: {payload}", 500, type="server_error")
                    yield f"data: {json.dumps(error.body())}\n\n"
                    break
                canvas = cast(list[int], payload)  # a step's or the final canvas
                answer = reader.read(canvas, done=step == "done")
                delta = answer.text[len(sent) :] if answer.text.startswith(sent) else ""
                sent += delta
                chunk = self._chunk(reply_id, kind, delta, answer.finish_reason, first)
                if job.canvas:
                    text, masks = reader.canvas_text(canvas)
                    chunk["canvas"] = {"step": ticket.steps, "text": text, "masks": masks}
                if step == "done":
                    chunk["usage"] = self._usage(job, answer)
                if delta or first or job.canvas or step == "done":
                    yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
                first = False
                if step == "done":
                    break
            yield "data: [DONE]\n\n"
        finally:
            self.worker.cancel(ticket)  # a no-op for a finished request; frees a dropped one


def create_app(
    model_dir: str,
    *,
    api_key: str | None = None,
    max_batch: int = 8,
    max_queue: int = 64,
    device: str | None = None,
    dtype: str | None = None,
    model_name: str | None = None,
    trust_remote_code: bool = False,
    sampler: dict[str, Any] | None = None,
    compile: bool = False,
) -> FastAPI:
    """The server for the model in ``model_dir`` (or a Hub id), its engine loop started with
    the app and stopped with it. ``sampler`` changes the model's sampler defaults (e.g.
    ``{"cache": "dual"}``); a request's extra fields change them again. ``compile`` runs the
    steps compiled on CUDA (:class:`diffutron_sample.Execution`)."""
    defaults = SamplerConfig.from_pretrained(model_dir, **(sampler or {}))
    model, tokenizer = load_model(
        model_dir,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
    )
    name = model_name or Path(model_dir.rstrip("/")).name or model_dir
    execution = Execution(compile=compile)
    server = Server(
        model,
        tokenizer,
        defaults,
        name,
        max_batch=max_batch,
        max_queue=max_queue,
        execution=execution,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.worker.start()
        try:
            yield
        finally:
            server.worker.stop()

    app = FastAPI(
        title="Diffutron", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.server = server
    _guards(app, api_key)
    _routes(app, server)
    return app


def _guards(app: FastAPI, api_key: str | None) -> None:
    """Every refusal in the OpenAI error format, and the API key on ``/v1/``."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        error = APIError(str(exc.detail), exc.status_code, code=kind)
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # logged, one line
        logger.exception("unexpected error on %s", request.url.path)
        error = APIError("the server failed on this request", 500, type="server_error")
        return JSONResponse(error.body(), status_code=500)

    @app.exception_handler(SampleError)
    async def sample_error(request: Request, exc: SampleError) -> JSONResponse:
        return JSONResponse(APIError(str(exc), 400).body(), status_code=400)

    @app.middleware("http")
    async def authorise(request: Request, call_next: CallNext) -> Response:
        given = request.headers.get("authorization", "").encode()
        expected = f"Bearer {api_key}".encode()
        protected = api_key and request.url.path.startswith("/v1/")
        if protected and not hmac.compare_digest(given, expected):
            error = APIError(
                "a valid API key is required (Authorization: Bearer KEY)",
                401,
                code="invalid_api_key",
            )
            return JSONResponse(error.body(), status_code=401)
        return await call_next(request)


def _routes(app: FastAPI, server: Server) -> None:
    """The OpenAI endpoints and the page."""

    @app.get("/v1/models", response_model=None)  # the dict as it is, no model inferred
    async def models() -> Body:
        server.worker.check_alive()  # a balancer must not send traffic to a dead engine
        card = {
            "id": server.name,
            "object": "model",
            "created": server.created,
            "owned_by": "diffutron",
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        job = chat_job(await server.body(request), server.tokenizer, server.defaults, server.name)
        return await server.run(request, job, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        data = await server.body(request)
        job = completion_job(data, server.tokenizer, server.defaults, server.name)
        return await server.run(request, job, "text")

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise APIError(f"no file {name!r}", 404, code="not_found")
        return FileResponse(path)
