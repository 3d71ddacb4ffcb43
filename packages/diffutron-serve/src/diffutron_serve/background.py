"""The server in a background thread of this process (a notebook, a test, a benchmark): uvicorn
on 127.0.0.1 and a free port, stopped by :meth:`Running.stop`."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp


@dataclass
class Running:
    """A server running in a thread: its base ``url`` (``http://127.0.0.1:PORT``) and app."""

    url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 15) -> None:
        """Finish the requests in flight, stop the engine loop and the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=timeout)

    def drain(self, timeout: float = 30) -> int:
        """What SIGTERM does to :func:`~diffutron_serve.serve`: refuse new requests, finish
        those in flight for up to ``timeout`` seconds, end the rest, then stop; how many were
        ended."""
        ended = 0
        served = getattr(getattr(self.app, "state", None), "server", None)
        if served is not None:
            ended = served.drain(timeout)
        self.stop()
        return int(ended)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]  # (host, port) of an IP socket
        return port


def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 30,
    wait_loaded: bool = True,
) -> Running:
    """Run ``app`` (:func:`diffutron_serve.create_app`) with uvicorn in a daemon thread; returns
    once it accepts connections and (``wait_loaded``) its model has loaded or failed to.
    ``port=0`` picks a free one."""
    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="diffutron-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.05)
    served = getattr(getattr(app, "state", None), "server", None)
    if wait_loaded and served is not None:
        served.loaded.wait(max(0.0, deadline - time.monotonic()))
    return Running(f"http://{host}:{port}", app, server, thread)
