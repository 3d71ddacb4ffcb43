"""``diffutron-eval bench``: the CETVEL subset through lm-eval, written as lm-eval's results JSON,
a Markdown table beside the paper's columns and a bar chart."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from diffutron_eval.errors import EvalError
from diffutron_eval.report import accuracies, bar_chart, markdown_table
from diffutron_eval.tasks import parse_data_files, resolve_tasks, task_configs, task_manager

logger = logging.getLogger(__name__)


@dataclass
class BenchResult:
    output_dir: Path
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{column: {task: acc %}}``: our model first, then any baseline."""
    files: dict[str, Path] = field(default_factory=dict)


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _evaluate(model, configs, manager, *, limit, seed, batch_size=None, device=None, args=None):
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
            log_samples=False,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    except EvalError:
        raise
    except Exception as exc:  # dataset or model loading inside lm-eval: one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvalError(f"lm-eval failed: {type(exc).__name__}: {reason}") from None


def _write_json(results: dict, path: Path) -> Path:
    from lm_eval.utils import handle_non_serializable

    results = {k: v for k, v in results.items() if k != "samples"}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)
    return path


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
) -> BenchResult:
    """Evaluate ``model`` (a masked diffusion LM dir or Hub id) on the CETVEL subset, and
    ``baseline`` (``hf:ID``, an autoregressive model through lm-eval's own ``hf`` model) on the
    same tasks and rows."""
    if limit is not None and limit < 1:
        raise EvalError(f"--limit must be at least 1, got {limit}")
    if baseline is not None and not baseline.startswith("hf:"):
        raise EvalError(f"--baseline {baseline!r}: write hf:MODEL_ID (or hf:DIR)")
    names = resolve_tasks(list(tasks) if tasks else None)
    files = parse_data_files(list(data_files))
    missing = [n for n in names if n not in files]
    if missing and _offline():
        raise EvalError(
            f"offline and no --data-files for {', '.join(missing)}: give TASK=PATH for each, "
            "or allow Hub access"
        )
    from diffutron_eval.lm import DiffutronLM

    lm = DiffutronLM(model, mc_num=mc_num, batch_size=batch_size, seed=seed, device=device)
    manager = task_manager()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = BenchResult(out)
    column = name or _column_name(model)
    ours = _evaluate(lm, task_configs(names, files, manager), manager, limit=limit, seed=seed)
    result.files["results"] = _write_json(ours, out / "results.json")
    result.accuracy[column] = accuracies(ours["results"])
    if baseline is not None:
        hub_id = baseline[3:]
        theirs = _evaluate(
            "hf",
            task_configs(names, files, manager),
            manager,
            limit=limit,
            seed=seed,
            batch_size=batch_size,
            device=device or "cpu",
            args=f"pretrained={hub_id}",
        )
        result.files["baseline"] = _write_json(theirs, out / "results-baseline.json")
        result.accuracy[hub_id] = accuracies(theirs["results"])
    table = markdown_table(result.accuracy, limit=limit)
    (out / "table.md").write_text(table, encoding="utf-8")
    result.files["table"] = out / "table.md"
    result.files["chart"] = bar_chart(result.accuracy, out / "chart.png")
    return result
