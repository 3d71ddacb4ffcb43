"""The benchmark suites of ``diffutron-eval bench --suite``: which tasks each runs, their local
data files (``--data-files``), and the configs lm-eval gets for them.

* ``cetvel``: the paper's seven CETVEL tasks (:mod:`diffutron_eval.tasks`);
* ``grammar``: TurBLiMP's 16 phenomena and MultiBLiMP's Turkish part;
* ``knowledge``: TurkishMMLU's nine subjects;
* ``turkish``: all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffutron_eval import tasks, turkish_tasks
from diffutron_eval.errors import EvalError
from diffutron_eval.turkish_tasks import MULTIBLIMP, TURBLIMP, TURKISHMMLU

SUITES: dict[str, tuple[str, ...]] = {
    "cetvel": tasks.TASKS,
    "grammar": (*TURBLIMP, *MULTIBLIMP),
    "knowledge": TURKISHMMLU,
    "turkish": (*tasks.TASKS, *TURBLIMP, *MULTIBLIMP, *TURKISHMMLU),
}
GROUPS: dict[str, tuple[str, ...]] = {tasks.GROUP: tasks.TASKS, **turkish_tasks.GROUPS}
"""Names that stand for several tasks, in ``--tasks`` and ``--data-files``."""
ALL = SUITES["turkish"]


def resolve(suite: str | None, names: list[str] | tuple[str, ...] | None) -> list[str]:
    """The tasks to run, in the suites' order: those named (groups expanded), else the suite's
    (``cetvel`` when neither is given)."""
    if suite is not None and suite not in SUITES:
        raise EvalError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    if not names:
        return list(SUITES[suite or "cetvel"])
    wanted: set[str] = set()
    for name in names:
        if name not in GROUPS and name not in ALL:
            raise EvalError(
                f"unknown task(s) {name}; known: {', '.join(tasks.TASKS)}, turblimp_<phenomenon> "
                f"(16), multiblimp_tur, turkishmmlu_<subject> (9); groups {', '.join(GROUPS)}"
            )
        wanted.update(GROUPS.get(name, (name,)))
    return [t for t in ALL if t in wanted]


def parse_data_files(
    pairs: list[str] | tuple[str, ...], dropped: dict[str, int] | None = None
) -> dict[str, Path]:
    """``["TASK=PATH", "turblimp=DIR", ...]`` as ``{task: absolute path}``, each file's rows
    checked; a group with a folder stands for the file of each of its tasks there. With
    ``dropped`` (``--drop-equal-pairs``), a pair of two equal sentences is not an error: each
    file's count of them goes into ``dropped``."""
    files: dict[str, Path] = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or not path:
            raise EvalError(f"--data-files {pair!r}: write TASK=PATH")
        if task in tasks.TASKS:
            files.update(tasks.parse_data_files([pair]))
            continue
        found = Path(path).expanduser().resolve()
        if task in turkish_tasks.GROUPS:
            if not found.is_dir():
                raise EvalError(f"--data-files {task}: {path} is not a folder of its task files")
            chosen = turkish_tasks.group_files(task, found)
        elif task in turkish_tasks.TASKS:
            if not found.is_file():
                raise EvalError(f"--data-files {task}: {path} does not exist")
            chosen = {task: found}
        else:
            raise EvalError(
                f"--data-files {pair!r}: unknown task {task!r}; known: the tasks of "
                f"--suite turkish and the groups {', '.join(turkish_tasks.GROUPS)}"
            )
        for name, file in chosen.items():
            equal = turkish_tasks.check_file(name, file, drop_equal=dropped is not None)
            if dropped is not None and equal:
                dropped[name] = equal
        files.update(chosen)
    return files


def task_configs(
    names: list[str], data_files: dict[str, Path], manager=None, drop_equal: bool = False
) -> list[Any]:
    """What lm-eval gets as ``tasks``: the CETVEL tasks as :func:`diffutron_eval.tasks.task_configs`
    gives them, the others as lm-eval's own configs (:func:`turkish_tasks.task_config`; with
    ``drop_equal``, pairs of two equal sentences left out)."""
    cetvel = [n for n in names if n in tasks.TASKS]
    out = tasks.task_configs(cetvel, data_files, manager) if cetvel else []
    others = [n for n in names if n not in cetvel]
    out += [turkish_tasks.task_config(n, data_files.get(n), drop_equal) for n in others]
    return out
