"""The user errors of diffutron-sample."""

from __future__ import annotations

from diffutron_common import DiffutronError


class SampleError(DiffutronError, ValueError):
    """A user's mistake (settings, prompt, model) described in one line with its fix."""
