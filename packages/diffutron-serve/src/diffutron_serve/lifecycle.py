"""Running the server until it is told to stop, and then stopping well: on SIGTERM or SIGINT it
drains (``/ready`` turns 503, new requests get 503, those in flight finish for up to
``drain_timeout`` seconds, the rest end with a 503) and exits 0, closing within 5 seconds the
connections still open after that. A second signal stops it at once."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from diffutron_serve.app import create_app
from diffutron_serve.errors import ServeError

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose first SIGTERM or SIGINT runs ``drain`` (in a thread: the signal
    handler returns at once and the server keeps answering) before it exits."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], int]) -> None:
        super().__init__(config)
        self.drain, self.draining = drain, threading.Event()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining.is_set():  # asked again: stop now, connections and all
            self.should_exit = self.force_exit = True
            return
        self.draining.set()
        logger.info("draining: no new requests; finishing those in flight")
        threading.Thread(target=self._drain_then_exit, name="diffutron-drain", daemon=True).start()

    def _drain_then_exit(self) -> None:
        try:
            ended = self.drain()
            if ended:
                logger.warning("the drain timed out: %d requests ended unfinished", ended)
        finally:
            self.should_exit = True  # not uvicorn's handle_exit: it re-raises the signal at exit


def serve(
    model_dir: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_timeout: float = 30.0,
    **options: Any,
) -> None:
    """Serve ``model_dir`` on ``host:port`` (127.0.0.1 unless told otherwise) until SIGTERM or
    SIGINT, then drain for up to ``drain_timeout`` seconds and return. A model that fails to load
    stops the server: :class:`~diffutron_serve.errors.ServeError` says why (an app made with
    :func:`create_app` and run otherwise stays up, and its ``/health`` says why)."""
    if not (math.isfinite(drain_timeout) and drain_timeout >= 0):
        raise ValueError(f"drain_timeout must be a finite number >= 0, got {drain_timeout}")
    options.setdefault("freeze_heap", True)  # this process only serves
    app = create_app(model_dir, **options)
    served = app.state.server
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5
    )
    server = DrainingServer(config, lambda: served.drain(drain_timeout))

    def stop_if_the_load_fails() -> None:
        served.loaded.wait()
        if served.failure is not None:
            server.should_exit = True

    threading.Thread(target=stop_if_the_load_fails, daemon=True).start()
    server.run()
    if served.failure is not None:
        raise ServeError(f"the model failed to load: {served.failure}")
