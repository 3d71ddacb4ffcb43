"""The CETVEL-subset tasks: where their YAMLs live, and their configs with local data files.

``lm_eval --include_path "$(diffutron-eval tasks-path)" --tasks diffutron_cetvel`` runs them in
plain lm-eval; :func:`task_configs` is what ``diffutron-eval bench`` passes to lm-eval, with
``--data-files TASK=PATH`` swapped in so that nothing needs the Hub.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from diffutron_eval.errors import EvalError

TASKS = ("belebele_tr", "exams_tr", "ironytr", "news_cat", "mnli_tr", "sts_tr", "xcopa_tr")
GROUP = "diffutron_cetvel"

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "belebele_tr": (
        "flores_passage",
        "question",
        "mc_answer1",
        "mc_answer2",
        "mc_answer3",
        "mc_answer4",
        "correct_answer_num",
    ),
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

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def tasks_path() -> Path:
    """The folder to pass to ``lm_eval --include_path``."""
    return Path(__file__).parent / "lm_tasks"


def resolve_tasks(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """Task names in the paper's order; ``diffutron_cetvel`` (or nothing) means all seven."""
    if not names or GROUP in names:
        return list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise EvalError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}, {GROUP}")
    return [t for t in TASKS if t in names]


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
            raise EvalError(f"--data-files {task}: {path} is not .jsonl, .csv or .parquet")
        check_columns(task, file)
        files[task] = file
    return files


def _columns(path: Path) -> tuple[list[str], int]:
    """(column names, rows) of a data file, reading as little as needed."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            return header, sum(1 for row in reader if row)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        return list(meta.schema.names), meta.num_rows
    from diffutron_eval.texts import jsonl_objects

    objects = [row for _, row in jsonl_objects(path)]
    return (list(objects[0]) if objects else []), len(objects)


def check_columns(task: str, path: Path) -> None:
    columns, rows = _columns(path)
    if rows == 0:
        raise EvalError(f"--data-files {task}: {path} has no rows")
    present = set(columns) | {ALIASES.get(task, {}).get(c, c) for c in columns}
    missing = [c for c in REQUIRED_COLUMNS[task] if c not in present]
    if missing:
        raise EvalError(
            f"--data-files {task}: {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns)})"
        )


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
        path = data_files[name]
        config.update(
            dataset_path=LOADERS[path.suffix.lower()],
            dataset_name=None,
            dataset_kwargs={"data_files": {split: str(path)}},
            training_split=None,
            fewshot_split=None,
        )
        config.pop("tag", None)
        out.append(config)
    return out
