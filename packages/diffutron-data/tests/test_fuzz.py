"""Property tests: whatever bytes a user's file holds, the readers yield rows or raise DataError,
nothing else (Hypothesis; derandomized, so every run tries the same inputs)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffutron_data import DataError, ReadReport, Source, iter_conversations, iter_rows, iter_texts

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text with lone surrogates too: json.dumps writes them as escapes that json.loads gives back.
texts = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=20).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rows = st.dictionaries(
    st.sampled_from(
        [
            "text",
            "instruction",
            "input",
            "output",
            "messages",
            "Input",
            "Output",
            "role",
            "content",
            "x",
        ]
    ),
    json_values,
    max_size=5,
)
lines = st.one_of(
    st.binary(max_size=80),
    rows.map(lambda r: json.dumps(r).encode()),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
files = st.lists(lines, max_size=8).map(lambda parts: b"\n".join(parts))


def _drain(iterator):
    count = 0
    for _ in iterator:
        count += 1
    return count


@FUZZ
@given(data=files, mode=st.sampled_from(["line", "paragraph"]))
def test_text_files_yield_text_or_data_error(tmp_path, data, mode):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(data)
    report = ReadReport(log_limit=0)
    try:
        got = [text for text, _ in iter_texts(Source(str(path), mode=mode), report)]
    except DataError:
        return
    assert len(got) == report.yielded
    assert all(text.strip() and text.encode("utf-8") for text in got)  # tokenisable text


@FUZZ
@given(data=files, column=st.sampled_from(["text", "output", "messages"]))
def test_jsonl_files_yield_rows_or_data_error(tmp_path, data, column):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        for text, _ in iter_texts(Source(str(path), column=column), ReadReport(log_limit=0)):
            assert text.strip() and text.encode("utf-8")  # tokenisable text
        _drain(iter_rows(Source(str(path)), ReadReport(log_limit=0)))
    except DataError:
        pass


@FUZZ
@given(data=files, schema=st.sampled_from(["auto", "alpaca", "instructurca", "messages"]))
def test_instruction_files_yield_conversations_or_data_error(tmp_path, data, schema):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        for messages, _ in iter_conversations(
            Source(str(path)), ReadReport(log_limit=0), schema=schema
        ):
            assert messages[-1]["role"] == "assistant"
            assert all(m["content"] and m["content"].encode("utf-8") for m in messages)
    except DataError:
        pass


@FUZZ
@given(spec=st.text(max_size=60))
def test_source_specs_parse_or_data_error(spec):
    try:
        Source.parse(spec)
    except DataError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(values=st.lists(texts, min_size=1, max_size=6))
def test_text_fields_are_tokenisable_text_or_skipped(tmp_path, values):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": v}) + "\n" for v in values), encoding="ascii")
    report = ReadReport(log_limit=0)
    try:
        got = [text for text, _ in iter_texts(Source(str(path)), report)]
    except DataError:
        return
    assert all(text.encode("utf-8") for text in got)
    assert len(got) + sum(report.skipped.values()) == len(values)
