"""Prometheus metrics at ``GET /metrics`` (docs/serving.md#metrics), in a registry of the app's
own, so several servers in one process never mix their figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from diffutron_serve.worker import Worker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format."""

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class EngineCollector(Collector):
    """What the engine holds right now, read at each scrape: the queue, the active rows, and
    its forward passes and cache refreshes so far."""

    def __init__(self, worker: Callable[[], Worker | None]) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        worker = self.worker()
        waiting, active, passes, refreshes = 0, 0, 0, 0
        if worker is not None:
            waiting, active = worker.load()
            passes, refreshes = worker.engine.lm.forward_passes, worker.engine.lm.refreshes
        yield GaugeMetricFamily(
            "diffutron_queue_length", "Requests waiting for a place in the batch.", value=waiting
        )
        yield GaugeMetricFamily(
            "diffutron_active_rows", "Requests being denoised in the batch.", value=active
        )
        yield CounterMetricFamily(
            "diffutron_forward_passes", "Forward passes of the model.", value=passes
        )
        yield CounterMetricFamily(
            "diffutron_cache_refreshes",
            "Rows whose block cache was refreshed by a full pass.",
            value=refreshes,
        )


class Metrics:
    """The server's metrics. The HTTP layer counts requests and tokens; the engine loop times
    steps, first tokens and requests (it is the worker's ``observer``)."""

    def __init__(self, worker: Callable[[], Worker | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "diffutron_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "diffutron_prompt_tokens",
            "Prompt tokens of the completions answered.",
            registry=self.registry,
        )
        self.generated_tokens = Counter(
            "diffutron_generated_tokens",
            "Tokens generated: the completion_tokens of every completion answered.",
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "diffutron_step_seconds",
            "Wall time of one engine step (one forward pass over the batch and its commits).",
            buckets=SECONDS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "diffutron_time_to_first_token_seconds",
            "From a completion request's arrival to the first step that committed its tokens.",
            buckets=SECONDS,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "diffutron_request_seconds",
            "From a completion request's arrival to its last token.",
            buckets=SECONDS,
            registry=self.registry,
        )
        self.registry.register(EngineCollector(worker))

    def count(self, method: str, route: str, status: int) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()

    def answered(self, prompt: int, generated: int) -> None:
        self.prompt_tokens.inc(prompt)
        self.generated_tokens.inc(generated)

    def step(self, seconds: float) -> None:
        self.step_seconds.observe(seconds)

    def first_token(self, seconds: float) -> None:
        self.first_token_seconds.observe(seconds)

    def finished(self, seconds: float) -> None:
        self.request_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
