"""What travels between a connection and the engine thread: a :class:`Ticket` per request, the
updates it carries, and what the engine loop reports as it goes."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from diffutron_sample import Execution
from diffutron_sample.text import Answer
from diffutron_serve.answers import Progress, Reader
from diffutron_serve.requests import Job

Update = tuple[str, Progress | str]
"""What a ticket's queue carries: ``("step" | "done", progress)``, or ``("error" | "shutdown",
message)``."""


@dataclass
class Ticket:
    """A job in flight: where its updates go (an asyncio queue on the caller's loop) and whether
    its client has gone away."""

    job: Job
    loop: asyncio.AbstractEventLoop
    reader: Reader
    updates: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: int = 0
    start: int = 0
    steps: int = 0
    arrived: float = field(default_factory=time.monotonic)
    final: Answer | None = None

    def send(self, kind: str, payload: Progress | str) -> None:
        self.loop.call_soon_threadsafe(self.updates.put_nowait, (kind, payload))


class Observer(Protocol):
    """What the engine loop reports as it goes (the server's metrics), in seconds."""

    def step(self, seconds: float) -> None: ...
    def first_token(self, seconds: float) -> None: ...
    def finished(self, seconds: float) -> None: ...


class Limits(TypedDict, total=False):
    """A :class:`Worker`'s keyword settings, as the server passes them on."""

    max_batch: int
    max_queue: int
    execution: Execution | None
