import json

import pytest

from diffutron_data import DataError, ReadReport, Source, iter_rows, iter_texts
from diffutron_data.readers import describe_source


def texts(source):
    report = ReadReport()
    return [t for t, _ in iter_texts(source, report)], report


def test_parse_specs():
    assert Source.parse("a/b.txt") == Source("a/b.txt")
    hub = Source.parse("hub:wikimedia/wikipedia?config=20231101.tr&split=train&column=text&limit=5")
    assert hub == Source("wikimedia/wikipedia", hub=True, config="20231101.tr", limit=5)
    assert Source.parse("x.txt?mode=paragraph").mode == "paragraph"
    for bad, message in [
        ("x.txt?colour=red", "unknown option"),
        ("x.txt?mode=page", "mode must be"),
        ("x.txt?limit=-2", "limit must be"),
        ("hub:", "names no file"),
    ]:
        with pytest.raises(DataError, match=message):
            Source.parse(bad)


def test_txt_lines_skip_and_count_empty_and_invalid_utf8(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(
        "Birinci satır.\n   \n\n".encode() + b"bozuk \xff satir\n" + "Son satır.\n".encode()
    )
    got, report = texts(Source(str(path)))
    assert got == ["Birinci satır.", "Son satır."]
    assert report.skipped == {"empty": 2, "invalid_utf8": 1}
    assert report.read == 5
    assert any(p.startswith(f"{path}:4: invalid utf8") for p in report.problems)


def test_txt_paragraph_mode_joins_lines_and_drops_a_broken_paragraph(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"Bir.\nIki.\n\n\xfe\xff\nUc.\n\nDort.\n")
    got, report = texts(Source(str(path), mode="paragraph"))
    assert got == ["Bir. Iki.", "Dort."]
    assert report.skipped["invalid_utf8"] == 1


def test_jsonl_reports_malformed_lines_and_missing_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [
        json.dumps({"text": "Merhaba."}),
        "{not json",
        json.dumps({"body": "alan yok"}),
        json.dumps(["liste"]),
        json.dumps({"text": 3}),
        json.dumps({"text": "  "}),
        "",
        json.dumps({"text": "Güle güle."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got, report = texts(Source(str(path)))
    assert got == ["Merhaba.", "Güle güle."]
    assert report.skipped == {
        "malformed_json": 1,
        "missing_field": 1,
        "malformed_row": 2,
        "empty": 2,
    }
    assert f"{path}:2: malformed json" in report.problems[0]
    assert report.read == len(lines)


def test_jsonl_where_no_row_has_the_field_names_the_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "a", "id": 1}\n{"body": "b", "id": 2}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"no row has the field 'text'; fields found: body, id"):
        texts(Source(str(path)))


def test_parquet_column_missing_names_the_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"content": ["Bir belge.", ""], "n": [1, 2]}), path)
    with pytest.raises(DataError, match=r"no column 'text'; columns: content, n"):
        texts(Source(str(path)))
    got, report = texts(Source(str(path), column="content"))
    assert got == ["Bir belge."] and report.skipped == {"empty": 1}


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        texts(Source(str(tmp_path / "yok.txt")))
    (tmp_path / "a.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        texts(Source(str(tmp_path / "a.csv")))


def test_limit_stops_reading(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("".join(f"Satır {i}.\n" for i in range(10)), encoding="utf-8")
    got, _ = texts(Source(str(path), limit=3))
    assert got == ["Satır 0.", "Satır 1.", "Satır 2."]


def test_unreachable_hub_dataset_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        list(iter_rows(Source("diffutron-test/does-not-exist", hub=True), ReadReport()))
    message = str(info.value)
    assert "\n" not in message
    assert "cannot load Hub dataset 'diffutron-test/does-not-exist'" in message
    assert "HF_HUB_OFFLINE is set" in message


def test_embedded_sources_and_description():
    got, _ = texts(Source("embedded:corpus-heldout"))
    assert got and all(isinstance(t, str) for t in got)
    info = describe_source(Source("embedded:corpus"))
    assert len(info["sha256"]) == 64 and info["bytes"] > 60_000
    with pytest.raises(DataError, match="unknown embedded source"):
        texts(Source("embedded:poems"))


def test_a_file_whose_name_holds_a_question_mark_is_that_file(tmp_path):
    path = tmp_path / "neden?.txt"
    path.write_text("Neden olmasın?\n", encoding="utf-8")
    source = Source.parse(str(path))
    assert source.location == str(path) and source.limit is None
    with pytest.raises(DataError, match="column does not apply to a text file"):
        Source.parse(f"{tmp_path / 'other.txt'}?column=text")
    with pytest.raises(DataError, match="limit given twice"):
        Source.parse("hub:owner/set?limit=1&limit=2")
