"""The one exception diffutron-train raises for a user's mistake."""

from diffutron_common import DiffutronError


class TrainError(DiffutronError, ValueError):
    """A user's mistake in a training run, in one line."""
