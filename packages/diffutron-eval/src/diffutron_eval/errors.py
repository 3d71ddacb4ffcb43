"""The one exception diffutron-eval raises for a user's mistake."""

from diffutron_common import DiffutronError


class EvalError(DiffutronError, ValueError):
    """Bad input to an evaluation (file, column, task name, limit), in one line."""
