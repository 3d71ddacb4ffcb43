"""Helpers of the CETVEL-subset task YAMLs (lm-eval ``!function`` targets).

Prompts, choices and targets follow CETVEL's definitions (docs/evaluation.md#task-definitions).
``process_*`` only bring public raw files to the Hub dataset's columns (EXAMS JSONL choices as a
list of objects, STS-B-TR CSV ``sentence1_tr``/``sentence2_tr``), so the same task runs on the Hub
split or on a local file; Hub rows pass through unchanged.

Casing: XCOPA lower-cases the first letter of each choice with Python's ``str.lower``, as
CETVEL and lm-eval do (``"I"`` becomes ``"i"``, ``"İ"`` becomes ``"i̇"``). Set
``DIFFUTRON_TURKISH_CASING=1`` to use Turkish rules instead (``"I"`` -> ``"ı"``, ``"İ"`` ->
``"i"``); scores then differ from CETVEL's.
"""

from __future__ import annotations

import os

NEWS_CATEGORIES = {"sport": 0, "magazine": 1, "politics": 2, "health": 3, "economy": 4}
XCOPA_CONNECTORS = {"cause": "çünkü", "effect": "bu yüzden"}


def _turkish_casing() -> bool:
    return os.environ.get("DIFFUTRON_TURKISH_CASING", "").lower() in ("1", "true", "yes")


def lower_first(text: str) -> str:
    """The first letter lower-cased: CETVEL's ``str.lower`` unless Turkish casing is asked for."""
    if not text:
        return text
    first = text[0]
    turkish = {"I": "ı", "İ": "i"} if _turkish_casing() else {}
    return turkish.get(first, first.lower()) + text[1:]


# belebele_tr, ironytr and mnli_tr need nothing here: plain Jinja in their YAMLs.

# -- exams_tr -----------------------------------------------------------------------------------


def process_exams(dataset):
    def fix(doc):
        choices = doc["question"]["choices"]
        if isinstance(choices, list):  # raw JSONL: [{text, label}, ...]
            doc["question"] = {
                **doc["question"],
                "choices": {
                    "text": [c["text"] for c in choices],
                    "label": [c["label"] for c in choices],
                },
            }
        return doc

    return dataset.map(fix)


def exams_target(doc) -> int:
    labels = list(doc["question"]["choices"]["label"])
    key = str(doc["answerKey"]).lstrip()
    return labels.index(key) if key in labels else 3  # CETVEL: 3 for rows whose key is missing


def exams_choices(doc) -> list[str]:
    return list(doc["question"]["choices"]["text"])


# -- news_cat -----------------------------------------------------------------------------------


def news_target(doc) -> int:
    label = doc["label"]
    return label if isinstance(label, int) else NEWS_CATEGORIES[str(label).strip()]


def macro_f1(items) -> float:
    """Macro-averaged F1 over (gold, prediction) pairs, computed here (no ``evaluate`` download)."""
    from sklearn.metrics import f1_score

    golds, preds = zip(*items, strict=True)
    return float(f1_score(golds, preds, average="macro"))


# -- sts_tr -------------------------------------------------------------------------------------


def process_sts(dataset):
    renames = {
        old: new
        for old, new in (("sentence1_tr", "sentence1"), ("sentence2_tr", "sentence2"))
        if old in dataset.column_names and new not in dataset.column_names
    }
    return dataset.rename_columns(renames) if renames else dataset


def sts_target(doc) -> int:
    score = float(doc["score"])
    for bound, label in ((0.5, 0), (1.5, 1), (2.5, 2), (3.5, 3), (4.5, 4)):
        if score < bound:
            return label
    return 5


# -- xcopa_tr -----------------------------------------------------------------------------------


def xcopa_text(doc) -> str:
    return doc["premise"].strip()[:-1] + " " + XCOPA_CONNECTORS[doc["question"]]


def xcopa_choices(doc) -> list[str]:
    return [lower_first(doc["choice1"]), lower_first(doc["choice2"])]
