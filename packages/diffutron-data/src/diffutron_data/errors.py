"""Errors and problem reports of diffutron-data."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from diffutron_common import DiffutronError
from diffutron_common import reason as exception_reason

logger = logging.getLogger("diffutron_data")


class DataError(DiffutronError):
    """A problem with the user's input, described in one line (the CLI prints it as is)."""


def load_error(what: str, exc: BaseException, *, offline_hint: str) -> DataError:
    """A one-line :class:`DataError` for ``what`` that failed to load with ``exc``; says so when
    ``HF_HUB_OFFLINE`` is set, since that is the usual cause here."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    return DataError(
        f"cannot load {what}: {exception_reason(exc)}" + (f" ({offline_hint})" if offline else "")
    )


@dataclass
class ReadReport:
    """What reading a source saw: documents yielded, and everything skipped, counted by reason.

    Every skipped record is logged as ``origin: reason`` (the first ``log_limit`` of them; the
    rest are counted) and the first ``keep_limit`` are kept for the manifest: nothing is lost
    silently.
    """

    yielded: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    keep_limit: int = 100
    log_limit: int = 20

    def skip(self, reason: str, origin: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        message = f"{origin}: {reason.replace('_', ' ')}{f' ({detail})' if detail else ''}; skipped"
        if len(self.problems) < self.keep_limit:
            self.problems.append(message)
        total = sum(self.skipped.values())
        if total <= self.log_limit:
            logger.warning(message)
        elif total == self.log_limit + 1:
            logger.warning("more problems follow; they are counted in the manifest")

    @property
    def read(self) -> int:
        return self.yielded + sum(self.skipped.values())

    def mark(self) -> tuple[int, int, int]:
        """Where the report stands before a source is read (see :meth:`check_yielded`)."""
        return self.yielded, sum(self.skipped.values()), len(self.problems)

    def check_yielded(self, source, before: tuple[int, int, int], what: str = "text") -> None:
        """An input that gave nothing usable since ``before`` (:meth:`mark`) is an error naming
        it (and the first problem seen in it), never an empty dataset built in silence."""
        if self.yielded > before[0]:
            return
        skipped = sum(self.skipped.values()) - before[1]
        problems = self.problems[before[2] :]
        first = f", the first: {problems[0]}" if problems else ""
        detail = f"{skipped} record(s) skipped{first}" if skipped else "it is empty"
        raise DataError(f"{source}: no usable {what} ({detail}); check the file and its options")
