"""``diffutron-eval bench``: a suite of Turkish tasks through lm-eval (the paper's CETVEL subset,
TurBLiMP and MultiBLiMP's grammar, TurkishMMLU: :mod:`diffutron_eval.suites`), written as lm-eval's
results JSON, a Markdown table beside the published columns, a bar chart and a report page."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from diffutron_common import (
    DiffutronError,
    check_output_folder,
    claim_folder,
    reason,
    write_text,
)
from diffutron_eval import suites
from diffutron_eval.errors import EvalError
from diffutron_eval.lm import DiffutronLM
from diffutron_eval.report import accuracies, bar_chart, markdown_table
from diffutron_eval.report_page import report_html, worst_pairs
from diffutron_eval.tasks import task_manager
from diffutron_eval.turkish_tasks import PAIR_TASKS

logger = logging.getLogger(__name__)
BENCH_KIND = "bench"


@dataclass
class BenchResult:
    output_dir: Path
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{column: {task: acc %}}``: our model first, then any baseline."""
    files: dict[str, Path] = field(default_factory=dict)
    """The files written, by role; none on a process other than rank 0."""
    rank: int = 0
    processes: int = 1
    shard: dict[str, list[int]] = field(default_factory=dict)
    """``{task: document ids}`` this process scored (all of them in one process)."""
    worst: dict[str, list[dict]] = field(default_factory=dict)
    """Per minimal-pair task, our model's pairs that prefer the bad sentence most."""


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _evaluate(
    model, configs, manager, *, limit, seed, batch_size=None, device=None, args=None, samples=False
):
    import lm_eval

    try:
        return lm_eval.simple_evaluate(
            model=model,
            model_args=args,
            tasks=configs,
            task_manager=manager,
            num_fewshot=0,
            limit=limit,
            batch_size=batch_size,
            device=device,
            bootstrap_iters=1000,
            log_samples=samples,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    except EvalError:
        raise
    except Exception as exc:  # dataset or model loading inside lm-eval: one line
        raise EvalError(f"lm-eval failed: {type(exc).__name__}: {reason(exc)}") from None


def _json_text(results: dict) -> str:
    from lm_eval.utils import handle_non_serializable

    results = {k: v for k, v in results.items() if k != "samples"}
    return json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n"


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def parse_baseline(baseline: str) -> str:
    """The model of ``--baseline hf:ID``: a Hub id (``owner/name``) or a local folder, and
    nothing else: the value never becomes lm-eval model arguments (``hf:X,trust_remote_code=…``
    is refused), so it cannot switch on remote code or any other loader setting."""
    if not baseline.startswith("hf:") or not baseline[3:]:
        raise EvalError(f"--baseline {baseline!r}: write hf:MODEL_ID (or hf:DIR)")
    target = baseline[3:]
    if Path(target).is_dir():
        return target
    if "," in target or "=" in target or not _HUB_ID.match(target):
        raise EvalError(
            f"--baseline {baseline!r}: {target!r} is neither a folder nor a Hub id (owner/name); "
            "model arguments cannot be given here (use --trust-remote-code for remote code)"
        )
    return target


def _column_name(model: str) -> str:
    """A short label: the folder name, with its run's name when it is the usual ``.../model``."""
    path = Path(str(model).rstrip("/"))
    if path.name == "model" and path.parent.name:
        return f"{path.parent.name}/model"
    return path.name or str(model)


def run_bench(
    model: str,
    *,
    output_dir: str | Path,
    tasks: list[str] | tuple[str, ...] | None = None,
    data_files: list[str] | tuple[str, ...] = (),
    limit: int | None = None,
    mc_num: int = 32,
    batch_size: int = 32,
    seed: int = 0,
    device: str | None = None,
    baseline: str | None = None,
    name: str | None = None,
    trust_remote_code: bool = False,
    suite: str | None = None,
    likelihood: str = "auto",
    drop_equal_pairs: bool = False,
) -> BenchResult:
    """Evaluate ``model`` (a masked diffusion LM dir or Hub id) on ``suite``'s tasks (``cetvel``
    unless ``tasks`` names others; ``likelihood``: :class:`~diffutron_eval.lm.DiffutronLM`'s; a
    pair of equal sentences is an error unless ``drop_equal_pairs``), and ``baseline`` (``hf:ID``,
    an autoregressive model through lm-eval's ``hf``) on the same tasks and rows. Remote code
    runs for neither unless ``trust_remote_code``.

    ``output_dir`` must be absent, empty or a folder an earlier bench wrote; its files
    (``results.json``, ``table.md``, ``chart.png``, ``report.html``, ``results-baseline.json``)
    are replaced only once every evaluation has finished.

    Under ``torchrun`` / ``accelerate launch`` each process scores its share of the documents;
    rank 0 alone writes the files, the others return just their :attr:`BenchResult.shard`."""
    dropped: dict[str, int] | None = {} if drop_equal_pairs else None
    hub_id, names, files = _checked_inputs(
        model, output_dir, (suite, tasks), (data_files, dropped), limit=limit, baseline=baseline
    )
    lm = DiffutronLM(
        model, mc_num=mc_num, batch_size=batch_size, seed=seed, device=device,
        trust_remote_code=trust_remote_code, likelihood=likelihood,
    )  # fmt: skip
    ours, theirs = _evaluations(
        lm,
        hub_id,
        names,
        files,
        limit=limit,
        seed=seed,
        batch_size=batch_size,
        device=device,
        trust_remote_code=trust_remote_code,
        drop_equal=drop_equal_pairs,
    )
    shard = {task: sorted(docs) for task, docs in sorted(lm.shard.items())}
    result = BenchResult(Path(output_dir), rank=lm.rank, processes=lm.world_size, shard=shard)
    if ours is None:  # another process of a launch: lm-eval gave rank 0 the results to write
        return result
    columns = {name or _column_name(model): ours, **({cast(str, hub_id): theirs} if theirs else {})}
    return _written(result, columns, limit=limit, likelihood=likelihood, dropped=dropped)


def _written(
    result: BenchResult,
    columns: dict[str, dict],
    *,
    limit: int | None,
    likelihood: str,
    dropped: dict[str, int] | None,
) -> BenchResult:
    """``result`` with the accuracy and worst pairs of lm-eval's ``columns`` (ours first, then
    the baseline's), once its files are written."""
    texts = {}
    for index, (column, results) in enumerate(columns.items()):
        texts["results-baseline.json" if index else "results.json"] = _json_text(results)
        result.accuracy[column] = accuracies(results["results"])
    result.worst = worst_pairs(next(iter(columns.values())).get("samples", {}))
    texts["table.md"] = markdown_table(result.accuracy, limit=limit, likelihood=likelihood)
    if dropped is not None:
        counts = ", ".join(f"{task} {n}" for task, n in dropped.items()) or "none in local files"
        texts["table.md"] += (
            f"\nLeft out, pairs of two equal sentences (--drop-equal-pairs): {counts}.\n"
        )
    # Every figure is ready: only now is the output folder claimed and its files replaced.
    result.files.update(_publish(result.output_dir, texts, result))
    return result


def _evaluations(
    lm: DiffutronLM,
    hub_id: str | None,
    names: list[str],
    files: dict[str, Path],
    *,
    limit: int | None,
    seed: int,
    batch_size: int,
    device: str | None,
    trust_remote_code: bool,
    drop_equal: bool = False,
) -> tuple[dict | None, dict | None]:
    """lm-eval's results for ``lm`` and for the baseline ``hub_id`` (lm-eval's own ``hf`` model;
    ``None`` without one), on tasks ``names``. Every process of a launch runs both (the ``hf``
    model shards across GPUs itself); results come back on rank 0 only, ``None`` elsewhere."""
    manager = task_manager()
    configs = suites.task_configs(names, files, manager, drop_equal)
    pairs = any(n in PAIR_TASKS for n in names)  # their samples give the worst pairs
    ours = _evaluate(lm, configs, manager, limit=limit, seed=seed, samples=pairs)
    if hub_id is None:
        return ours, None
    theirs = _evaluate(
        "hf",
        suites.task_configs(names, files, manager, drop_equal),
        manager,
        limit=limit,
        seed=seed,
        batch_size=batch_size,
        device=device or "cpu",
        args={"pretrained": hub_id, "trust_remote_code": trust_remote_code},
    )
    return ours, theirs if lm.rank == 0 else None


def _checked_inputs(
    model: str,
    output_dir: str | Path,
    chosen: tuple[str | None, list[str] | tuple[str, ...] | None],
    data: tuple[list[str] | tuple[str, ...], dict[str, int] | None],
    *,
    limit: int | None,
    baseline: str | None,
) -> tuple[str | None, list[str], dict[str, Path]]:
    """What :func:`run_bench` checks before loading anything: ``(the baseline's Hub id or None,
    the task names, {task: data file})``, or one :class:`EvalError`. ``chosen``: the suite and
    tasks asked for; ``data``: the ``--data-files`` and where to count the equal pairs left out
    (``None``: they are errors)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise EvalError(f"--limit must be at least 1, got {limit}")
    hub_id = parse_baseline(baseline) if baseline is not None else None
    _check_output_dir(output_dir, [model])
    names = suites.resolve(chosen[0], list(chosen[1]) if chosen[1] else None)
    files = suites.parse_data_files(list(data[0]), data[1])
    # a data file inside the output folder could be overwritten by a result of its name
    _check_output_dir(output_dir, list(files.values()))
    missing = [n for n in names if n not in files]
    if missing and _offline():
        raise EvalError(
            f"offline and no --data-files for {', '.join(missing)}: give TASK=PATH for each, "
            "or allow Hub access"
        )
    return hub_id, names, files


def _check_output_dir(output_dir: str | Path, inputs: list[str | Path]) -> None:
    """``output_dir`` may receive a bench's files and holds none of ``inputs``."""
    try:
        check_output_folder(output_dir, BENCH_KIND, option="--output-dir", inputs=inputs)
    except DiffutronError as exc:
        raise EvalError(str(exc)) from None


def _publish(out: Path, texts: dict[str, str], result: BenchResult) -> dict[str, Path]:
    """Claim ``out`` as a bench folder and write ``texts`` (``{file name: text}``), the chart of
    the result's accuracy and the report page into it; an earlier bench's baseline results,
    which this run did not make, are removed. Returns the files written, by role."""
    claim_folder(out, BENCH_KIND, option="--output-dir")
    for file, text in texts.items():
        write_text(out / file, text, option="--output-dir")
    if "results-baseline.json" not in texts:  # an earlier bench's, not this run's
        (out / "results-baseline.json").unlink(missing_ok=True)
    files = {"results": out / "results.json"}
    if "results-baseline.json" in texts:
        files["baseline"] = out / "results-baseline.json"
    files["table"] = out / "table.md"
    files["chart"] = bar_chart(result.accuracy, out / "chart.png")
    page = report_html(texts["table.md"], files["chart"], result.worst)
    write_text(out / "report.html", page, option="--output-dir")
    files["report"] = out / "report.html"
    return files
