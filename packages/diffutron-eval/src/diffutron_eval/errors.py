"""The one exception diffutron-eval raises for a user's mistake."""


class EvalError(ValueError):
    """Bad input to an evaluation (file, column, task name, limit), in one line."""
