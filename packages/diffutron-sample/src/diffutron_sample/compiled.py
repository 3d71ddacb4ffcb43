"""The compiled step on CUDA: :func:`~diffutron_sample.cache.run_layers` under ``torch.compile``
with static shapes (canvas widths and computed columns rounded up to multiples of
:data:`WIDTH_BUCKET`, batches to powers of two), so a step costs a few fused kernels instead of
hundreds of launches. Where it cannot run (not CUDA, not a ModernBERT model, or compilation
fails) generation runs eagerly, and the log says why once (docs/sampling.md#compiled-step).
"""

from __future__ import annotations

import logging

import torch

from diffutron_sample.cache import Buckets, cache_support, run_layers

logger = logging.getLogger(__name__)

WIDTH_BUCKET = 64
"""Canvas widths are rounded up to multiples of this."""
COLUMN_BUCKET = 16
"""Computed-column counts are rounded up to multiples of this (a dual-cache step of a block of
32 computes 32 columns, not 64)."""
GRAPHS = 256
"""torch.compile's recompile limit while the step is compiled: one graph per bucketed shape."""
ATTRIBUTE = "diffutron_compiled"
"""Where :func:`compile_model` leaves the compiled step on the model."""
_SAID: set[str] = set()


def _say(reason: str) -> None:
    if reason not in _SAID:
        _SAID.add(reason)
        logger.warning("%s: running the step eagerly", reason)


def compile_blocker(model: torch.nn.Module) -> str | None:
    """Why the compiled step cannot run ``model`` here, or None."""
    why = cache_support(model)
    if why is not None:
        return why.replace("the block cache needs", "the compiled step needs")
    device = next(model.parameters()).device
    if device.type != "cuda":
        return f"the compiled step runs on CUDA only, not {device.type}"
    return None


class CompiledLayers:
    """Runs the layers compiled, with the shapes :attr:`buckets` gives; falls back to the eager
    :func:`run_layers` for good (said once) if compilation or a compiled call fails."""

    def __init__(self, compiled=None) -> None:
        if compiled is None:
            limit = torch._dynamo.config.cache_size_limit
            torch._dynamo.config.cache_size_limit = max(limit, GRAPHS)  # one graph per bucket
            compiled = torch.compile(run_layers, dynamic=False)
        self.function = compiled
        self.buckets = Buckets(WIDTH_BUCKET, COLUMN_BUCKET, batch=True)
        self.failed: str | None = None

    def __call__(self, *args):
        if self.failed is None:
            try:
                return self.function(*args)
            except torch.OutOfMemoryError:
                raise  # the eager step needs more memory, not less
            except Exception as exc:  # inductor / triton missing or failing: never fatal
                self.failed = f"the compiled step failed ({type(exc).__name__}: {exc})"
                self.failed = self.failed.splitlines()[0]
                self.buckets = Buckets()  # the eager step gains nothing from padding
                _say(self.failed)
        return run_layers(*args)


def compile_model(model: torch.nn.Module, compiled=None) -> bool:
    """Give ``model`` the compiled step (every :class:`~diffutron_sample.MaskedLM` over it then
    uses it); ``False``, said once in the log, where it cannot run. ``compiled`` replaces
    ``torch.compile``'s function (tests)."""
    why = None if compiled is not None else compile_blocker(model)
    if why is not None:
        _say(why)
        return False
    setattr(model, ATTRIBUTE, CompiledLayers(compiled))
    return True


def compiled_layers(model: torch.nn.Module) -> CompiledLayers | None:
    return getattr(model, ATTRIBUTE, None)
