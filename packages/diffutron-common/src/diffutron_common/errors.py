"""One kind of error for a user's mistake, said in one line."""

from __future__ import annotations


class DiffutronError(Exception):
    """A problem with the user's input, files or settings, described in one line that names the
    problem and its fix. Every Diffutron package's user-error class derives from it, and the apps
    print it as it is (no traceback)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(one_line_text(message))


def one_line_text(text: str) -> str:
    """``text`` on one line: line breaks become ``" / "``, surrounding space is dropped."""
    parts = [part.strip() for part in str(text).splitlines() if part.strip()]
    return " / ".join(parts)


def reason(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, else its type name: what a one-line error
    quotes of a library's exception."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
