"""The CETVEL-subset tasks: where their YAMLs live, and their configs with local data files.

``lm_eval --include_path "$(diffutron-eval tasks-path)" --tasks diffutron_cetvel`` runs them in
plain lm-eval; :func:`task_configs` is what ``diffutron-eval bench`` passes to lm-eval, with
``--data-files TASK=PATH`` swapped in so that nothing needs the Hub.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from diffutron_common import reason
from diffutron_eval.errors import EvalError
from diffutron_eval.lm_tasks.utils import NEWS_CATEGORIES
from diffutron_eval.texts import csv_rows, jsonl_objects

GROUP = "diffutron_cetvel"
GROUP_FILE = Path(__file__).parent / "lm_tasks" / f"_{GROUP}.yaml"
"""The group's lm-eval file: the one list of the CETVEL tasks, in the paper's order (the CLI reads
it too, without importing this package)."""


def group_tasks(path: Path = GROUP_FILE) -> tuple[str, ...]:
    """The task names of an lm-eval group file, in its order."""
    return tuple(yaml.safe_load(path.read_text(encoding="utf-8"))["task"])


TASKS = group_tasks()

_BELEBELE_TEXT = (
    "flores_passage",
    "question",
    "mc_answer1",
    "mc_answer2",
    "mc_answer3",
    "mc_answer4",
)
"""Belebele's passage, question and four answers."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "belebele_tr": (*_BELEBELE_TEXT, "correct_answer_num"),
    "exams_tr": ("question", "answerKey"),
    "ironytr": ("text", "label"),
    "news_cat": ("text", "label"),
    "mnli_tr": ("premise", "hypothesis", "label"),
    "sts_tr": ("sentence1", "sentence2", "score"),
    "xcopa_tr": ("premise", "choice1", "choice2", "question", "label"),
}
"""Columns each task reads (the Hub dataset's names)."""

ALIASES = {"sts_tr": {"sentence1_tr": "sentence1", "sentence2_tr": "sentence2"}}
"""Raw-file column names the tasks also accept (STS-B-TR's public CSV)."""

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def tasks_path() -> Path:
    """The folder to pass to ``lm_eval --include_path``."""
    return Path(__file__).parent / "lm_tasks"


def parse_data_files(pairs: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """``["xcopa_tr=path", ...]`` as ``{task: absolute path}``, each checked."""
    files: dict[str, Path] = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or not path:
            raise EvalError(f"--data-files {pair!r}: write TASK=PATH")
        if task not in TASKS:
            raise EvalError(
                f"--data-files {pair!r}: unknown task {task!r}; known: {', '.join(TASKS)}"
            )
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise EvalError(f"--data-files {task}: {path} does not exist")
        if file.suffix.lower() not in LOADERS:
            raise EvalError(f"--data-files {task}: {path} is not .jsonl, .csv, .tsv or .parquet")
        check_columns(task, file)
        files[task] = file
    return files


def file_rows(
    path: Path, delimiter: str = ","
) -> tuple[list[str], list[tuple[str, dict[str, Any]]], bool]:
    """``(columns, [(origin, row)], textual)`` of a data file (a ``.csv``'s fields separated by
    ``delimiter``, a ``.tsv``'s by tabs); ``textual`` for CSV, whose values are all text until
    ``datasets`` infers their types."""

    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header, rows = csv_rows(path, "\t" if suffix == ".tsv" else delimiter)
        return header, [(f"{path}:{i + 2}", row) for i, row in enumerate(rows)], True
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise EvalError(f"{path}: not a readable parquet file ({reason(exc)})") from None
        rows = table.to_pylist()
        return table.column_names, [(f"{path}:row {i + 1}", r) for i, r in enumerate(rows)], False
    objects = list(jsonl_objects(path))
    columns = list(objects[0][1]) if objects else []
    return columns, [(f"{path}:{number}", row) for number, row in objects], False


def _whole(value: Any, allowed: range, *, textual: bool) -> bool:
    """An integer label in ``allowed``; written as digits only where the format has no types."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in allowed
    if textual and isinstance(value, str):
        text = value
        digits = text[1:] if text.startswith("-") else text
        return digits.isdigit() and int(text) in allowed
    return False


def _digits_or_whole(value: Any, allowed: range) -> bool:
    """A label the task's template renders as digits: an integer, or digits as text."""
    return _whole(value, allowed, textual=True)


def _score(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool) and math.isfinite(number) and 0 <= number <= 5


def _exams_question(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("stem"), str):
        return False
    choices = value.get("choices")
    if isinstance(choices, list):
        return bool(choices) and all(
            isinstance(c, dict) and isinstance(c.get("text"), str) for c in choices
        )
    return isinstance(choices, dict) and isinstance(choices.get("text"), list)


def _news_label(value: Any, *, textual: bool) -> bool:

    if isinstance(value, str) and value.strip() in NEWS_CATEGORIES:
        return True
    return _whole(value, range(len(NEWS_CATEGORIES)), textual=textual)


LABEL_RULES: dict[str, tuple[str, str, Any]] = {
    "xcopa_tr": ("label", "0 or 1 (a number)", lambda v, t: _whole(v, range(2), textual=t)),
    "ironytr": ("label", "0 or 1", lambda v, t: _digits_or_whole(v, range(2))),
    "mnli_tr": (
        "label",
        "0, 1, 2 (or -1, unlabelled)",
        lambda v, t: _digits_or_whole(v, range(-1, 3)),
    ),
    "news_cat": (
        "label",
        "0-4 or one of sport, magazine, politics, health, economy",
        lambda v, t: _news_label(v, textual=t),
    ),
    "sts_tr": ("score", "a number from 0 to 5", lambda v, t: _score(v)),
    "belebele_tr": (
        "correct_answer_num",
        "1, 2, 3 or 4",
        lambda v, t: _digits_or_whole(v, range(1, 5)),
    ),
    "exams_tr": (
        "question",
        "an object with a 'stem' text and 'choices'",
        lambda v, t: _exams_question(v),
    ),
}
"""Per task: the column holding the answer, what it must be, and the check. lm-eval scores a
row whose label is of another type (``"1"`` where ``1`` is meant) as wrong without a word."""


TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "belebele_tr": _BELEBELE_TEXT,
    "exams_tr": (),
    "ironytr": ("text",),
    "news_cat": ("text",),
    "mnli_tr": ("premise", "hypothesis"),
    "sts_tr": ("sentence1", "sentence2"),
    "xcopa_tr": ("premise", "choice1", "choice2"),
}
"""Columns each task puts into its prompt or choices: they must hold text that is not empty."""
CHOICES = {"xcopa_tr": {"question": ("cause", "effect")}}
"""Columns whose values come from a fixed set."""


def _row_problem(task: str, row: dict[str, Any]) -> str | None:
    aliases = {new: old for old, new in ALIASES.get(task, {}).items()}
    for name in TEXT_COLUMNS[task]:
        value = row.get(name, row.get(aliases.get(name, name)))
        if not isinstance(value, str) or not value.strip():
            return f"{name} must be text that is not empty, got {value!r}"
    for name, allowed in CHOICES.get(task, {}).items():
        if row.get(name) not in allowed:
            return f"{name} must be one of {', '.join(allowed)}, got {row.get(name)!r}"
    return None


def check_columns(task: str, path: Path) -> None:
    """The columns the task reads are there, and every row's answer is of the type and in the
    range the task expects; else one :class:`EvalError` naming the file and row."""
    columns, rows, textual = file_rows(path)
    if not rows:
        raise EvalError(f"--data-files {task}: {path} has no rows")
    present = set(columns) | {ALIASES.get(task, {}).get(c, c) for c in columns}
    missing = [c for c in REQUIRED_COLUMNS[task] if c not in present]
    if missing:
        raise EvalError(
            f"--data-files {task}: {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns)})"
        )
    column, expected, check = LABEL_RULES[task]
    for origin, row in rows:
        value = row.get(column)
        if not check(value, textual):
            raise EvalError(
                f"--data-files {task}: {origin}: {column} must be {expected}, got {value!r}; "
                "fix the file (lm-eval would score this row as wrong)"
            )
        problem = _row_problem(task, row)
        if problem:
            raise EvalError(f"--data-files {task}: {origin}: {problem}; fix the file")


def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_path()), include_defaults=False)


def task_configs(names: list[str], data_files: dict[str, Path], manager=None) -> list[Any]:
    """What to pass as lm-eval's ``tasks``: the registered name, or for a task with a local file
    its full config with the file as the evaluated split (and no few-shot split)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = manager or task_manager()
    out: list[Any] = []
    for name in names:
        if name not in data_files:
            out.append(name)
            continue
        config = load_yaml(manager.task_index[name].yaml_path, resolve_func=True)
        split = next(
            config[k] for k in ("test_split", "validation_split") if config.get(k) is not None
        )
        config.update(local_data(data_files[name], split))
        config.pop("tag", None)
        out.append(config)
    return out


def local_data(path: Path, split: str, delimiter: str = ",") -> dict[str, Any]:
    """The config entries that make a task read ``path`` as its evaluated ``split`` (and nothing
    else: no training or few-shot split); a ``.csv``'s fields separated by ``delimiter``, a
    ``.tsv``'s by tabs."""
    kwargs: dict[str, Any] = {"data_files": {split: str(path)}}
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        kwargs["sep"] = "\t" if suffix == ".tsv" else delimiter
    return {
        "dataset_path": LOADERS[suffix],
        "dataset_name": None,
        "dataset_kwargs": kwargs,
        "training_split": None,
        "fewshot_split": None,
    }
