"""``report.html``: a bench's tables, its chart and, for each minimal-pair task, the pairs the model
gets most wrong, in one static page that needs no network (the chart is inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from diffutron_eval.report import label
from diffutron_eval.turkish_tasks import PAIR_TASKS

WORST = 5
"""Pairs shown per task."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
"""


def worst_pairs(samples: dict[str, list[dict[str, Any]]], count: int = WORST) -> dict[str, list]:
    """For each minimal-pair task among lm-eval's logged ``samples``: its ``count`` pairs whose
    bad sentence the model prefers most (``margin``: log p(bad) - log p(good), largest first),
    each with both sentences and scores; pairs it gets right are not listed."""
    out: dict[str, list[dict[str, Any]]] = {}
    for task in PAIR_TASKS:
        found = []
        for sample in samples.get(task, []):
            (_, good), (_, bad) = sample["arguments"][:2]  # (context, sentence): good first
            (good_ll, _), (bad_ll, _) = sample["filtered_resps"][:2]
            margin = float(bad_ll) - float(good_ll)
            if margin > 0:
                found.append(
                    {
                        "doc_id": sample["doc_id"],
                        "good": good,
                        "bad": bad,
                        "good_loglikelihood": float(good_ll),
                        "bad_loglikelihood": float(bad_ll),
                        "margin": margin,
                    }
                )
        if task in samples:
            out[task] = sorted(found, key=lambda p: (-p["margin"], p["doc_id"]))[:count]
    return out


def _worst_table(task: str, pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return f'<p id="worst-{task}">{html.escape(label(task))}: every pair right.</p>\n'
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td class=number>{:.3f}</td><td class=number>{:.3f}</td>"
        "<td class=number>{:.3f}</td></tr>".format(
            html.escape(p["good"]),
            html.escape(p["bad"]),
            p["good_loglikelihood"],
            p["bad_loglikelihood"],
            p["margin"],
        )
        for p in pairs
    )
    return (
        f'<h3>{html.escape(label(task))}</h3>\n<table id="worst-{task}"><tr><th>good sentence'
        "</th><th>bad sentence</th><th>log p(good)</th><th>log p(bad)</th><th>margin</th></tr>"
        f"{rows}</table>\n"
    )


def report_html(table: str, chart: Path, worst: dict[str, list[dict[str, Any]]]) -> str:
    """The page: ``table`` (a bench's ``table.md``) as HTML, the ``chart`` PNG inlined, and each
    minimal-pair task's worst pairs (:func:`worst_pairs`)."""
    import markdown

    image = base64.b64encode(chart.read_bytes()).decode("ascii")
    parts = [
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>",
        "<title>Diffutron bench report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Diffutron bench report</h1>",
        '<section id="tables">',
        markdown.markdown(table, extensions=["tables"]),
        "</section>",
        "<h2>Chart</h2>",
        f'<img id="chart" alt="accuracy per task" src="data:image/png;base64,{image}">',
    ]
    if worst:
        parts.append('<section id="worst"><h2>Worst pairs</h2>')
        parts.append(
            "<p>Per phenomenon, the pairs whose ungrammatical sentence the model prefers most.</p>"
        )
        parts += [_worst_table(task, pairs) for task, pairs in worst.items()]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
