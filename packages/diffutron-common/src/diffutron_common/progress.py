"""The progress switch: bars on every long loop unless ``DIFFUTRON_NO_PROGRESS`` is set."""

from __future__ import annotations

import os
from collections.abc import Callable

OFF = ("1", "true", "yes", "on")


def progress_enabled() -> bool:
    """False when ``DIFFUTRON_NO_PROGRESS`` is ``1``, ``true``, ``yes`` or ``on`` (any case)."""
    return os.environ.get("DIFFUTRON_NO_PROGRESS", "").strip().lower() not in OFF


def quiet_transformers() -> None:
    """Switch off transformers' own bars (loading, saving weights) when progress is off."""
    if progress_enabled():
        return
    from transformers.utils import logging as hf_logging

    # transformers leaves this helper unannotated; it takes nothing and returns None.
    disable: Callable[[], None] = hf_logging.disable_progress_bar
    disable()
