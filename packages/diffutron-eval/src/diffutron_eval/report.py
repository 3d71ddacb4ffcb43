"""The paper's CETVEL table (docs/evaluation.md#published-results) and our results beside it:
Markdown and a bar chart."""

from __future__ import annotations

from pathlib import Path

from diffutron_common import atomic_path
from diffutron_eval.tasks import TASKS

PAPER_MODELS = (
    "Diffutron 1st-stage",
    "Diffutron 2nd-stage",
    "TURNA 1.1B",
    "Kumru 2B",
    "kanarya 2B",
    "Llama-3.2 3B",
    "Trendyol 7B",
    "aya-101 13B",
)
PAPER_ACCURACY: dict[str, tuple[float, ...]] = {
    "belebele_tr": (22.22, 27.00, 22.56, 29.00, 28.11, 55.78, 36.22, 22.89),
    "exams_tr": (25.95, 27.74, 23.66, 30.03, 30.03, 26.21, 28.50, 22.90),
    "ironytr": (50.67, 52.00, 48.33, 51.00, 50.00, 50.17, 50.00, 52.17),
    "news_cat": (23.20, 32.40, 32.80, 26.40, 66.80, 64.00, 81.20, 20.00),
    "mnli_tr": (33.29, 32.81, 34.94, 36.42, 33.40, 34.76, 35.19, 27.90),
    "sts_tr": (17.77, 18.78, 14.21, 11.75, 12.91, 12.91, 15.52, 16.97),
    "xcopa_tr": (53.80, 52.00, 55.80, 54.00, 64.20, 54.60, 61.00, 59.60),
}
"""Accuracy (%) per task and model, as published (the paper's Table; averages recomputed)."""

TASK_LABELS = {
    "belebele_tr": "Belebele_TR",
    "exams_tr": "EXAMS_TR",
    "ironytr": "IronyTR",
    "news_cat": "News_Cat",
    "mnli_tr": "MNLI_TR",
    "sts_tr": "STS_TR",
    "xcopa_tr": "XCOPA_TR",
}


def accuracies(results: dict) -> dict[str, float]:
    """``{task: acc in %}`` from lm-eval's ``results`` mapping (``"acc,none"`` keys)."""
    out = {}
    for task in TASKS:
        row = results.get(task)
        if row and "acc,none" in row:
            out[task] = 100.0 * float(row["acc,none"])
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def markdown_table(ours: dict[str, dict[str, float]], *, limit: int | None = None) -> str:
    """Our columns (``{name: {task: acc %}}``) beside the paper's eight, with averages over the
    tasks each column has; tasks none of ours ran are left out."""
    tasks = [t for t in TASKS if any(t in column for column in ours.values())] or list(TASKS)
    names = [*ours, *PAPER_MODELS]
    lines = [
        "| task | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for task in tasks:
        cells = [f"{ours[n][task]:.2f}" if task in ours[n] else "–" for n in ours]
        cells += [f"{v:.2f}" for v in PAPER_ACCURACY[task]]
        lines.append(f"| {TASK_LABELS[task]} | " + " | ".join(cells) + " |")
    averages = [f"{_mean(ours[n][t] for t in tasks if t in ours[n]):.2f}" for n in ours]
    averages += [
        f"{_mean(PAPER_ACCURACY[t][i] for t in tasks):.2f}" for i in range(len(PAPER_MODELS))
    ]
    lines.append("| **Average** | " + " | ".join(averages) + " |")
    note = (
        f"\nOur columns ran on at most {limit} examples per task (`--limit`); the paper's on the "
        "full splits, so only the full runs compare.\n"
        if limit
        else ""
    )
    return "\n".join(lines) + "\n" + note


def bar_chart(ours: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bars, one group per task: our columns first (highlighted), then the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    tasks = [t for t in TASKS if any(t in column for column in ours.values())] or list(TASKS)
    series = [(n, [ours[n].get(t, 0.0) for t in tasks]) for n in ours]
    series += [(m, [PAPER_ACCURACY[t][i] for t in tasks]) for i, m in enumerate(PAPER_MODELS)]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(tasks)), 4.5), dpi=120)
    palette = plt.get_cmap("tab20")
    for k, (name, values) in enumerate(series):
        xs = [i + (k - len(series) / 2 + 0.5) * width for i in range(len(tasks))]
        ours_series = k < len(ours)
        ax.bar(
            xs,
            values,
            width,
            label=name,
            color="crimson" if ours_series and k == 0 else palette(k % 20),
            edgecolor="black" if ours_series else "none",
            linewidth=0.8,
        )
    ax.set_xticks(range(len(tasks)), [TASK_LABELS[t] for t in tasks])
    ax.set_ylabel("accuracy (%)")
    ax.set_title("CETVEL subset: this run beside the Diffutron paper's table")
    ax.legend(fontsize=7, ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
