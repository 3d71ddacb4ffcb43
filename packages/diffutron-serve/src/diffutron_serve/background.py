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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]  # (host, port) of an IP socket
        return port


def serve_in_thread(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30
) -> Running:
    """Run ``app`` (:func:`diffutron_serve.create_app`) with uvicorn in a daemon thread; returns
    once it accepts connections. ``port=0`` picks a free one."""
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
    return Running(f"http://{host}:{port}", app, server, thread)
