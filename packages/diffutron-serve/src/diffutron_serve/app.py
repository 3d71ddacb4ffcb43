"""The HTTP server: OpenAI's ``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``
(with ``suffix`` infilling), streamed or not, over one engine loop; the probes ``/health`` and
``/ready``; and the page at ``/``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from diffutron_common import check_model_source
from diffutron_sample import (
    Execution,
    SampleError,
    SamplerConfig,
    find_commit_policy,
    load_model,
)
from diffutron_serve.errors import APIError, model_not_found
from diffutron_serve.metrics import CONTENT_TYPE
from diffutron_serve.middleware import Guard
from diffutron_serve.requests import chat_job, completion_job
from diffutron_serve.schema import (
    ChatCompletion,
    ChatRequest,
    Completion,
    CompletionRequest,
    ModelCard,
    ModelList,
)
from diffutron_serve.server import Server

logger = logging.getLogger(__name__)

STATIC = Path(str(files("diffutron_serve") / "static"))
Body = dict[str, Any]  # a JSON object
OPEN = ("/health", "/ready", "/")
"""Paths that never need the key: the probes and the page (which asks for the key itself), and
the page's files under ``/static/``."""
ROUTES = (
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/health",
    "/ready",
    "/metrics",
    "/",
)


def route_of(scope: Scope) -> str:
    """A request's route for the metrics: one of the server's, never the raw path (a scan of
    unknown paths must not grow the label set)."""
    path: str = scope["path"]
    if path in ROUTES:
        return path
    if path.startswith("/static/"):
        return "/static/{name}"
    return "other"


def protection(metrics_public: bool) -> Callable[[str], bool]:
    """Whether a path needs the API key (when the server has one): the API, and everything but
    the probes, the page and (``metrics_public``) ``/metrics``."""
    public = (*OPEN, "/metrics") if metrics_public else OPEN

    def protected(path: str) -> bool:
        return not (path in public or path.startswith("/static/"))

    return protected


APP_SETTINGS: dict[str, Any] = {
    "title": "Diffutron",
    "summary": "An OpenAI-compatible server for masked diffusion language models.",
    "docs_url": "/docs",
    "redoc_url": None,
    "openapi_url": "/openapi.json",
}


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
    metrics_public: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """The server for the model in ``model_dir`` (or a Hub id). It answers as soon as it starts;
    the model loads in the background meanwhile (``/ready`` says when it is done) and its engine
    loop stops with the app. ``sampler`` changes the model's sampler defaults (e.g.
    ``{"cache": "dual"}``); a request's extra fields change them again. ``compile`` runs the
    steps compiled on CUDA (:class:`diffutron_sample.Execution`). ``/metrics`` needs the key
    when there is one, unless ``metrics_public``. ``freeze_heap``: the load ends with
    :func:`diffutron_sample.freeze_heap` until the engine stops (as :func:`serve` asks)."""
    check_model_source(model_dir)  # a missing folder is said now, not after the server started
    defaults = SamplerConfig.from_pretrained(model_dir, **(sampler or {}))
    name = model_name or Path(model_dir.rstrip("/")).name or model_dir
    server = Server(
        lambda: load_model(
            model_dir, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        ),
        defaults,
        name,
        policy=lambda tokenizer: find_commit_policy(
            model_dir, tokenizer, required=defaults.policy == "learned"
        ),
        max_batch=max_batch,
        max_queue=max_queue,
        execution=Execution(compile=compile),
        freeze=freeze_heap,
    )

    app = FastAPI(lifespan=_lifespan(server), **APP_SETTINGS, version=version("diffutron-serve"))
    app.state.server = server
    _document(app)
    _handlers(app)
    _probes(app, server)
    _routes(app, server)
    _page(app)
    app.add_middleware(
        Guard,
        api_key=api_key,
        protected=protection(metrics_public),
        route=route_of,
        count=server.metrics.count,
    )
    return app


def _lifespan(server: Server) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The model loads when the app starts (in the background); the engine stops with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start_loading()
        try:
            yield
        finally:
            server.state = "draining" if server.state == "ready" else server.state
            server.stop()

    return lifespan


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its JSON itself (so a refusal is the
    server's 400 in the OpenAI format, never FastAPI's 422)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _document(app: FastAPI) -> None:
    """``/openapi.json`` with the request models that the routes read themselves."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            known = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (ChatRequest, CompletionRequest):
                full = model.model_json_schema(ref_template="#/components/schemas/{model}")
                known.update(full.pop("$defs", {}))
                known[model.__name__] = full
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _handlers(app: FastAPI) -> None:
    """Every refusal in the OpenAI error format."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        error = APIError(str(exc.detail), exc.status_code, code=kind)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # logged, one line
        logger.exception("unexpected error on %s", request.url.path)
        error = APIError("the server failed on this request", 500, type="server_error")
        return JSONResponse(error.body(), status_code=500)

    @app.exception_handler(SampleError)
    async def sample_error(request: Request, exc: SampleError) -> JSONResponse:
        return JSONResponse(APIError(str(exc), 400).body(), status_code=400)


def _probes(app: FastAPI, server: Server) -> None:
    """What orchestrators and Prometheus ask: ``/health``, ``/ready``, ``/metrics``."""

    @app.head("/health", response_model=None, include_in_schema=False)
    @app.get("/health", response_model=None)
    async def health() -> Response:
        """Liveness: 200 while the process and its engine live (loading included)."""
        status, body = server.health()
        return JSONResponse(body, status_code=status)

    @app.head("/ready", response_model=None, include_in_schema=False)
    @app.get("/ready", response_model=None)
    async def ready() -> Response:
        """Readiness: 200 only when the model is loaded and the server is not draining."""
        status, body = server.ready()
        return JSONResponse(body, status_code=status)

    @app.head("/metrics", response_model=None, include_in_schema=False)
    @app.get("/metrics", response_model=None)
    async def metrics() -> Response:
        """Prometheus metrics in the text format."""
        return Response(server.metrics.render(), media_type=CONTENT_TYPE)


def _routes(app: FastAPI, server: Server) -> None:
    """The OpenAI endpoints."""

    def card() -> ModelCard:
        return ModelCard(id=server.name, created=server.created)

    @app.head("/v1/models", response_model=ModelList, include_in_schema=False)
    @app.get("/v1/models", response_model=ModelList)
    async def models() -> ModelList:
        """The one served model."""
        server.serving()  # a balancer must not send traffic where nothing would answer
        return ModelList(data=[card()])

    @app.head("/v1/models/{model_id:path}", response_model=ModelCard, include_in_schema=False)
    @app.get("/v1/models/{model_id:path}", response_model=ModelCard)
    async def model(model_id: str) -> ModelCard:
        """The served model, by its id."""
        server.serving()
        if model_id != server.name:
            raise model_not_found(model_id, server.name)
        return card()

    @app.post(
        "/v1/chat/completions",
        openapi_extra=_body(ChatRequest),
        responses={200: {"model": ChatCompletion}},
    )
    async def chat(request: Request) -> Response:
        """A conversation's answer (Server-Sent Events with ``stream``)."""
        return await server.run(request, chat_job, "chat")

    @app.post(
        "/v1/completions",
        openapi_extra=_body(CompletionRequest),
        responses={200: {"model": Completion}},
    )
    async def completions(request: Request) -> Response:
        """A prompt's continuation, or with ``suffix`` the gap between the two."""
        return await server.run(request, completion_job, "text")


def _page(app: FastAPI) -> None:
    """The page at ``/`` and its files."""

    @app.head("/", include_in_schema=False)
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.head("/static/{name}", include_in_schema=False)
    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise APIError(f"no file {name!r}", 404, code="not_found")
        return FileResponse(path)
