"""Exact match of graded tasks beside their trivial baselines, on rows whose answers are known."""

import pytest

from diffutron_eval import BASELINES, EvalError, score_task


def rows(*outputs):
    return [{"input": f"cümle {i}", "output": o} for i, o in enumerate(outputs)]


def test_exact_match_counts_only_identical_answers():
    task_rows = rows("Evet", "Hayır", "Evet", "Evet")
    score = score_task("is_question", task_rows, ["Evet", "Hayır", "evet", "Evet "])
    assert score["exact_match"] == pytest.approx(0.5)  # case and spaces count
    assert score["baseline_answer"] == "Evet"
    assert score["baseline_exact_match"] == pytest.approx(0.75)
    assert (score["kind"], score["baseline"]) == BASELINES["is_question"]
    assert [e["answer"] for e in score["examples"]] == ["Evet", "Hayır", "evet"]
    assert score["answers"] == ["Evet", "Hayır", "evet", "Evet "]


def test_repeat_is_measured_against_the_empty_answer():
    score = score_task("repeat", rows("a b", "c d"), ["a b", ""])
    assert score["exact_match"] == pytest.approx(0.5)
    assert (score["baseline_answer"], score["baseline_exact_match"]) == ("", 0.0)


def test_a_wrong_count_of_answers_or_an_unknown_task_is_one_error():
    with pytest.raises(EvalError, match="1 answers for 2 rows"):
        score_task("first_word", rows("a", "b"), ["a"])
    with pytest.raises(EvalError, match="no baseline for task 'poems'"):
        score_task("poems", rows("a"), ["a"])
    with pytest.raises(EvalError, match="no rows"):
        score_task("first_word", [], [])
