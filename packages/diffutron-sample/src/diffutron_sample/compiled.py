"""The compiled step on CUDA: :func:`~diffutron_sample.cache.run_layers` under ``torch.compile``
with static shapes (canvas widths and computed columns rounded up to multiples of
:data:`WIDTH_BUCKET`, batches to powers of two), so a step costs a few fused kernels instead of
hundreds of launches. A caller asks for it with ``Execution(compile=True)`` (given to
:class:`~diffutron_sample.masked_lm.MaskedLM`, the engine or the generation calls). Where it cannot
run (not CUDA, not a ModernBERT model, or compilation fails) generation runs eagerly, and the log
says why once (docs/sampling.md#compiled-step).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from diffutron_sample.cache import Buckets, cache_support
from diffutron_sample.layers import Layers, run_layers

logger = logging.getLogger(__name__)

WIDTH_BUCKET = 64
"""Canvas widths are rounded up to multiples of this."""
COLUMN_BUCKET = 16
"""Computed-column counts are rounded up to multiples of this (a dual-cache step of a block of
32 computes 32 columns, not 64)."""
GRAPHS = 256
"""torch.compile's recompile limit while a compiled step runs: one graph per bucketed shape (set
for the call and restored after it, never for the whole process)."""
_SAID: set[str] = set()


def say_once(reason: str) -> None:
    """Log, once per reason, why the step runs eagerly."""
    if reason not in _SAID:
        _SAID.add(reason)
        logger.warning("%s: running the step eagerly", reason)


def compile_blocker(model: torch.nn.Module) -> str | None:
    """Why the compiled step cannot run ``model`` here, or None."""
    why = cache_support(model)
    if why is not None:
        return f"the compiled step cannot run this model: {why}"
    device = next(model.parameters()).device
    if device.type != "cuda":
        return f"the compiled step runs on CUDA only, not {device.type}"
    return None


def _limits() -> dict[str, int]:
    """The recompile limits of this torch, raised to :data:`GRAPHS`."""
    config = torch._dynamo.config
    names = [n for n in ("cache_size_limit", "recompile_limit") if hasattr(config, n)]
    return {name: max(getattr(config, name), GRAPHS) for name in names}


class CompiledLayers:
    """Runs the layers compiled, with the shapes :attr:`buckets` gives; falls back to the eager
    :func:`run_layers` for good (said once) if compilation or a compiled call fails."""

    def __init__(self, compiled: Layers | None = None) -> None:
        self.function = compiled or torch.compile(run_layers, dynamic=False)
        self.buckets = Buckets(WIDTH_BUCKET, COLUMN_BUCKET, batch=True)
        self.failed: str | None = None

    def __call__(self, *args: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.failed is None:
            try:
                with torch._dynamo.config.patch(_limits()):
                    return self.function(*args)
            except torch.OutOfMemoryError:
                raise  # the eager step needs more memory, not less
            except Exception as exc:  # inductor / triton missing or failing: never fatal
                self.failed = f"the compiled step failed ({type(exc).__name__}: {exc})"
                self.failed = self.failed.splitlines()[0]
                self.buckets = Buckets()  # the eager step gains nothing from padding
                say_once(self.failed)
        return run_layers(*args)
