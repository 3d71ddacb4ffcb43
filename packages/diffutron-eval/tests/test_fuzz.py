"""Property tests: the evaluation data readers (texts for perplexity, task files for bench) give
texts or a one-line EvalError, whatever the file holds."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffutron_eval import EvalError, read_texts
from diffutron_eval.tasks import check_columns

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
text_values = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=15).map("".join)
values = st.none() | st.booleans() | st.integers() | st.floats() | text_values
rows = st.dictionaries(
    st.sampled_from(
        [
            "text",
            "label",
            "premise",
            "choice1",
            "choice2",
            "question",
            "score",
            "sentence1",
            "sentence2",
        ]
    ),
    values,
    max_size=6,
)
lines = st.one_of(
    st.binary(max_size=60),
    rows.map(lambda r: json.dumps(r).encode()),
    st.text(max_size=30).map(str.encode),
)
files = st.lists(lines, max_size=6).map(lambda parts: b"\n".join(parts))


@FUZZ
@given(data=files, suffix=st.sampled_from([".txt", ".jsonl", ".csv"]))
def test_texts_or_eval_error(tmp_path, data, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(data)
    try:
        texts = read_texts([str(path)])
    except EvalError as exc:
        assert "\n" not in str(exc)
        return
    assert texts and all(t.strip() and t.encode("utf-8") for t in texts)


@FUZZ
@given(
    data=files,
    task=st.sampled_from(["xcopa_tr", "ironytr", "sts_tr", "mnli_tr", "news_cat"]),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_task_files_pass_the_checks_or_eval_error(tmp_path, data, task, suffix):
    path = tmp_path / f"task{suffix}"
    path.write_bytes(data)
    try:
        check_columns(task, path)
    except EvalError as exc:
        assert "\n" not in str(exc)
