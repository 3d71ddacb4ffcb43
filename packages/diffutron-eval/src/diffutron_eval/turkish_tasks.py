"""The Turkish tasks beyond CETVEL, as lm-eval itself defines them: TurBLiMP's 16 grammatical
phenomena (``turblimp_*``), the Turkish part of MultiBLiMP (``multiblimp_tur``) and TurkishMMLU's
nine subjects (``turkishmmlu_*``). Each runs from lm-eval's own task file, on its Hub data, or on a
local file (``--data-files TASK=PATH``) whose rows are checked first: TurBLiMP's ``;``-separated
CSV files as its repository ships them, MultiBLiMP's TSV, TurkishMMLU as JSON lines or Parquet.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffutron_eval.errors import EvalError
from diffutron_eval.tasks import file_rows, local_data

PHENOMENA = (
    "anaphor_agreement",
    "argument_structure_ditransitive",
    "argument_structure_transitive",
    "binding",
    "determiners",
    "ellipsis",
    "irregular_forms",
    "island_effects",
    "nominalization",
    "npi_licensing",
    "passives",
    "quantifiers",
    "relative_clauses",
    "scrambling",
    "subject_agreement",
    "suspended_affixation",
)
TURBLIMP = tuple(f"turblimp_{p}" for p in PHENOMENA)
MULTIBLIMP = ("multiblimp_tur",)
SUBJECTS = (
    "Biology",
    "Chemistry",
    "Geography",
    "History",
    "Mathematics",
    "Philosophy",
    "Physics",
    "Religion_and_Ethics",
    "Turkish_Language_and_Literature",
)
TURKISHMMLU = tuple(f"turkishmmlu_{s.lower()}" for s in SUBJECTS)
TASKS = (*TURBLIMP, *MULTIBLIMP, *TURKISHMMLU)
GROUPS = {"turblimp": TURBLIMP, "turkishmmlu": TURKISHMMLU}
"""Group names that stand for their tasks (lm-eval calls TurBLiMP's group ``turblimp_core``)."""
PAIR_TASKS = (*TURBLIMP, *MULTIBLIMP)
"""The minimal-pair tasks: each document is a good and a bad sentence, scored alone."""


def repository_names(task: str) -> tuple[str, ...]:
    """The file names a task's data has in its repository's folder (``--data-files GROUP=DIR``):
    TurBLiMP's ``augmented_<phenomenon>.csv`` (subject agreement is
    ``augmented_subject_verb_agreement.csv``) or ``<phenomenon>.csv``; TurkishMMLU's
    ``<Subject>.jsonl`` or ``.parquet``."""
    if task in TURBLIMP:
        phenomenon = task.removeprefix("turblimp_")
        stem = "subject_verb_agreement" if phenomenon == "subject_agreement" else phenomenon
        return (f"augmented_{stem}.csv", f"{phenomenon}.csv")
    subject = SUBJECTS[TURKISHMMLU.index(task)]
    return (f"{subject}.jsonl", f"{subject}.parquet")


def task_file(task: str) -> Path:
    """lm-eval's own YAML file of ``task`` (found without importing lm-eval)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise EvalError("lm-eval is not installed; install diffutron-eval's dependencies")
    root = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    if task in TURBLIMP:
        return root / "turblimp" / f"{task.removeprefix('turblimp_')}.yaml"
    if task in MULTIBLIMP:
        return root / "multiblimp" / f"{task}.yaml"
    return root / "turkishmmlu" / "config" / f"{SUBJECTS[TURKISHMMLU.index(task)]}.yaml"


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _pair_problem(good: str, bad: str) -> Callable[[dict[str, Any]], str | None]:
    def problem(row: dict[str, Any]) -> str | None:
        for name in (good, bad):
            if not _text(row.get(name)):
                return f"{name} must be a sentence, got {row.get(name)!r}"
        if row[good].strip() == row[bad].strip():
            return EQUAL
        return None

    return problem


EQUAL = "the good and the bad sentence are the same (a minimal pair differs)"
"""What a pair of two equal sentences is. TurBLiMP's own files hold 10 in anaphor agreement and
10 in quantifiers; lm-eval would count each as right (a tie), TurBLiMP's script as wrong."""


def _question_problem(row: dict[str, Any]) -> str | None:
    if not _text(row.get("question")):
        return f"question must be text that is not empty, got {row.get('question')!r}"
    choices = row.get("choices")
    if not isinstance(choices, list) or len(choices) != 5 or not all(map(_text, choices)):
        return f"choices must be a list of five answers (A to E), got {choices!r}"
    if str(row.get("answer", "")).strip() not in ("A", "B", "C", "D", "E"):
        return f"answer must be one of A, B, C, D, E, got {row.get('answer')!r}"
    return None


@dataclass(frozen=True)
class Shape:
    """The rows a family's tasks read: the Hub data's columns, the names a repository's files
    give them, how its CSV separates fields, the kinds of file it can be, and each row's check."""

    columns: tuple[str, ...]
    problem: Callable[[dict[str, Any]], str | None]
    aliases: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    suffixes: tuple[str, ...] = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


SHAPES = {
    "turblimp": Shape(
        ("sentence_good", "sentence_bad"),
        _pair_problem("sentence_good", "sentence_bad"),
        {"good_sentence": "sentence_good", "bad_sentence": "sentence_bad"},
        delimiter=";",
    ),
    "multiblimp": Shape(("sen", "wrong_sen"), _pair_problem("sen", "wrong_sen")),
    "turkishmmlu": Shape(  # choices is a list: no CSV
        ("question", "choices", "answer"), _question_problem, suffixes=(".jsonl", ".parquet")
    ),
}
SEPARATORS = {";": "';'", ",": "','", "\t": "tabs"}


def family(task: str) -> str:
    return task.split("_")[0]


def _separator_hint(columns: list[str], delimiter: str) -> str:
    """A header read as one column that another separator would have split: say so."""
    if len(columns) != 1:
        return ""
    for other, name in SEPARATORS.items():
        if other != delimiter and other in columns[0]:
            return (
                f"; its header is separated by {name}, but these files are separated by "
                f"{SEPARATORS[delimiter]}"
            )
    return ""


def check_file(task: str, path: Path, drop_equal: bool = False) -> int:
    """The rows of ``path`` are what ``task`` reads (columns, sentences, answers), or one
    :class:`EvalError` naming the file, the row and the fix. A pair of two equal sentences is
    such an error unless ``drop_equal``: then it is counted, and the count returned."""
    shape = SHAPES[family(task)]
    suffix = path.suffix.lower()
    if suffix not in shape.suffixes:
        raise EvalError(f"--data-files {task}: {path} is not {', '.join(shape.suffixes)}")
    delimiter = "\t" if suffix == ".tsv" else shape.delimiter
    columns, rows, _ = file_rows(path, delimiter)
    if not rows:
        raise EvalError(f"--data-files {task}: {path} has no rows")
    present = {shape.aliases.get(c, c) for c in columns}
    missing = [c for c in shape.columns if c not in present]
    if missing:
        raise EvalError(
            f"--data-files {task}: {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns)}){_separator_hint(columns, delimiter)}"
        )
    problems = [
        (origin, shape.problem({shape.aliases.get(k, k): v for k, v in row.items()}))
        for origin, row in rows
    ]
    equal = sum(problem == EQUAL for _, problem in problems)
    for origin, problem in problems:
        if problem == EQUAL and not drop_equal:
            raise EvalError(
                f"--data-files {task}: {origin}: {problem}; fix the file, or pass "
                f"--drop-equal-pairs to leave out its {equal} such pair(s)"
            )
        if problem and problem != EQUAL:
            raise EvalError(f"--data-files {task}: {origin}: {problem}; fix the file")
    return equal


def _prepared(task: str, drop_equal: bool) -> Callable[[Any], Any]:
    """``process_docs``: a repository's column names renamed to the Hub's, and with
    ``drop_equal`` the pairs of two equal sentences left out."""
    shape = SHAPES[family(task)]

    def prepare(dataset: Any) -> Any:
        found = {old: new for old, new in shape.aliases.items() if old in dataset.column_names}
        dataset = dataset.rename_columns(found) if found else dataset
        if drop_equal and task in PAIR_TASKS:
            good, bad = shape.columns
            dataset = dataset.filter(lambda row: str(row[good]).strip() != str(row[bad]).strip())
        return dataset

    return prepare


def task_config(task: str, path: Path | None, drop_equal: bool = False) -> dict[str, Any]:
    """lm-eval's own config of ``task``; with ``path``, reading that file (checked by
    :func:`check_file`) as its evaluated split, a repository's column names renamed to the Hub's;
    with ``drop_equal``, a minimal-pair task's pairs of two equal sentences left out."""
    from lm_eval.tasks._yaml_loader import load_yaml

    config: dict[str, Any] = load_yaml(str(task_file(task)), resolve_func=True)
    config.pop("tag", None)
    config["task"] = task
    if path is not None:
        config.update(local_data(path, config["test_split"], SHAPES[family(task)].delimiter))
    if path is not None or drop_equal:
        config["process_docs"] = _prepared(task, drop_equal)
    return config


def group_files(group: str, folder: Path) -> dict[str, Path]:
    """``{task: file}`` of a group's repository folder (``--data-files turblimp=DIR``): every
    task's file must be there."""
    files, missing = {}, []
    for task in GROUPS[group]:
        found = [folder / n for n in repository_names(task) if (folder / n).is_file()]
        if found:
            files[task] = found[0]
        else:
            missing.append(repository_names(task)[0])
    if missing:
        raise EvalError(
            f"--data-files {group}: {folder} lacks {', '.join(missing)}; give the folder of "
            f"all {len(GROUPS[group])} files, or TASK=PATH for each task"
        )
    return files
