"""Exact-match scoring of graded tasks beside their trivial baselines.

The rows are plain dicts with the expected answer under ``output`` (the synthetic tasks of
``diffutron_data.synthetic`` make them; any rows of that shape do), so scoring needs nothing of
the package that made them. A task's figure is only worth reporting beside what a model that
never reads the prompt would score: each task names its trivial baseline here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from diffutron_eval.errors import EvalError

BASELINES: dict[str, tuple[str, str]] = {
    "is_question": ("classification", "the majority answer"),
    "first_word": ("extraction", "the most frequent first word"),
    "last_word": ("extraction", "the most frequent last word"),
    "word_count": ("counting", "the most frequent count"),
    "plural": ("morphology", "the most frequent plural"),
    "repeat": ("transformation", "an empty answer"),
}
"""Each task's kind and trivial baseline: the most frequent expected answer, given to every
row, except for ``repeat`` (every answer differs), whose baseline is the empty answer."""


def baseline(task: str, rows: Sequence[dict[str, Any]]) -> tuple[str, float]:
    """``(answer, exact match)`` of ``task``'s trivial baseline on ``rows``."""
    if not rows:
        raise EvalError(f"no rows to score for {task!r}")
    majority = Counter(r["output"] for r in rows).most_common(1)[0][0]
    guess = "" if task == "repeat" else majority
    return guess, sum(r["output"] == guess for r in rows) / len(rows)


def score_task(
    task: str, rows: Sequence[dict[str, Any]], answers: Sequence[str], *, examples: int = 3
) -> dict[str, Any]:
    """Exact match of ``answers`` against ``rows``' ``output``, beside the task's baseline, with
    the first ``examples`` rows shown and every answer kept (so the figure can be checked)."""
    if task not in BASELINES:
        raise EvalError(f"no baseline for task {task!r}; known: {', '.join(BASELINES)}")
    if len(answers) != len(rows):
        raise EvalError(f"{len(answers)} answers for {len(rows)} rows of {task!r}")
    kind, baseline_name = BASELINES[task]
    guess, base = baseline(task, rows)
    pairs = list(zip(rows, answers, strict=True))
    return {
        "kind": kind,
        "rows": len(rows),
        "exact_match": sum(a == r["output"] for r, a in pairs) / len(rows),
        "baseline": baseline_name,
        "baseline_answer": guess,
        "baseline_exact_match": base,
        "examples": [
            {"input": r["input"], "expected": r["output"], "answer": a} for r, a in pairs[:examples]
        ],
        "answers": list(answers),
    }
