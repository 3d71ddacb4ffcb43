"""The paper's CETVEL table (docs/evaluation.md#published-results) and our results beside it, and
our results on TurBLiMP, MultiBLiMP and TurkishMMLU: Markdown and bar charts."""

from __future__ import annotations

from pathlib import Path

from diffutron_common import atomic_path
from diffutron_eval.suites import ALL
from diffutron_eval.tasks import TASKS
from diffutron_eval.turkish_tasks import MULTIBLIMP, SUBJECTS, TURBLIMP, TURKISHMMLU

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


FAMILIES = (
    ("Grammar: TurBLiMP and MultiBLiMP (Turkish)", (*TURBLIMP, *MULTIBLIMP), "TurBLiMP"),
    ("Knowledge: TurkishMMLU", TURKISHMMLU, "TurkishMMLU"),
)
"""The tables after CETVEL's: a title, the tasks, and what their average row averages."""


def _title(title: str, ran: set[str]) -> str:
    """A family's title, without MultiBLiMP when it did not run."""
    return title if ran & set(MULTIBLIMP) or "MultiBLiMP" not in title else "Grammar: TurBLiMP"


def label(task: str) -> str:
    """A task's name in tables and charts."""
    if task in TASK_LABELS:
        return TASK_LABELS[task]
    if task in TURKISHMMLU:
        return SUBJECTS[TURKISHMMLU.index(task)].replace("_", " ")
    if task in MULTIBLIMP:
        return "MultiBLiMP (Turkish)"
    return task.removeprefix("turblimp_").replace("_", " ")


def accuracies(results: dict) -> dict[str, float]:
    """``{task: acc in %}`` from lm-eval's ``results`` mapping (``"acc,none"`` keys)."""
    out = {}
    for task in ALL:
        row = results.get(task)
        if row and "acc,none" in row:
            out[task] = 100.0 * float(row["acc,none"])
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def markdown_table(
    ours: dict[str, dict[str, float]], *, limit: int | None = None, likelihood: str = "auto"
) -> str:
    """Our columns (``{name: {task: acc %}}``): on CETVEL beside the paper's eight, with averages
    over the tasks each column has (tasks none of ours ran are left out); then a table for each
    other family of tasks that ran (:data:`FAMILIES`), with the ``likelihood`` used."""
    ran = {t for column in ours.values() for t in column}
    others = [f for f in FAMILIES if ran & set(f[1])]
    text = _cetvel_table(ours) if ran & set(TASKS) or not others else ""
    if others:
        text = f"## CETVEL\n\n{text}\n" if text else ""
        for title, tasks, average in others:
            text += f"## {_title(title, ran)}\n\n{_family_table(ours, tasks, average)}"
            if tasks[0] in TURBLIMP:
                text += f"\nSentences scored alone by likelihood `{likelihood}`.\n"
            text += "\n"
        text = text.rstrip("\n") + "\n"
    note = (
        f"\nOur columns ran on at most {limit} examples per task (`--limit`); the published "
        "figures on the full splits, so only the full runs compare.\n"
        if limit
        else ""
    )
    return text + note


def _family_table(ours: dict[str, dict[str, float]], tasks, average: str) -> str:
    """Our columns on ``tasks`` (those any ran), and their mean over ``average``'s tasks."""
    names = list(ours)
    rows = [t for t in tasks if any(t in ours[n] for n in names)]
    lines = ["| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for task in rows:
        cells = [f"{ours[n][task]:.2f}" if task in ours[n] else "–" for n in names]
        lines.append(f"| {label(task)} | " + " | ".join(cells) + " |")
    counted = [t for t in rows if t not in MULTIBLIMP]
    if counted:
        means = [f"{_mean(ours[n][t] for t in counted if t in ours[n]):.2f}" for n in names]
        lines.append(f"| **Average ({average})** | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def _cetvel_table(ours: dict[str, dict[str, float]]) -> str:
    """The CETVEL table: our columns beside the paper's eight."""
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
    return "\n".join(lines) + "\n"


def bar_chart(ours: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bars, one panel per family of tasks that ran: on CETVEL our columns first
    (highlighted), then the paper's; on TurBLiMP each phenomenon, on TurkishMMLU each subject."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ran = {t for column in ours.values() for t in column}
    panels: list[tuple[str | None, tuple[str, ...]]] = []
    if ran & set(TASKS) or not ran:
        panels.append((None, TASKS))
    panels += [(_title(title, ran), tasks) for title, tasks, _ in FAMILIES if ran & set(tasks)]
    widest = max(len([t for t in tasks if t in ran]) or len(tasks) for _, tasks in panels)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(8, 0.9 * widest + 2), 4.5 * len(panels)), dpi=120
    )
    for ax, (title, tasks) in zip([axes] if len(panels) == 1 else axes, panels, strict=True):
        if title is None:
            _bars(ax, ours, [t for t in TASKS if t in ran] or list(TASKS), paper=True)
            ax.set_title("CETVEL subset: this run beside the Diffutron paper's table")
        else:
            _bars(ax, ours, [t for t in tasks if t in ran], paper=False)
            ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _bars(ax, ours: dict[str, dict[str, float]], tasks: list[str], *, paper: bool) -> None:
    """One group of bars per task: our columns (the first in crimson), then the paper's."""
    from matplotlib import pyplot as plt

    series = [(n, [ours[n].get(t, 0.0) for t in tasks]) for n in ours]
    if paper:
        series += [(m, [PAPER_ACCURACY[t][i] for t in tasks]) for i, m in enumerate(PAPER_MODELS)]
    width = 0.8 / len(series)
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
    ax.set_xticks(
        range(len(tasks)),
        [label(t) for t in tasks],
        rotation=0 if paper else 40,
        ha="center" if paper else "right",
        fontsize=8,
    )
    ax.set_ylabel("accuracy (%)")
    if not paper:
        ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")  # chance for a pair
    ax.legend(fontsize=7, ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
