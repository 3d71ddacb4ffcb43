"""Records at the edges (docs/training.md#records-at-the-edges): a line longer than the cap is
counted and read past in pieces, never held whole; a document longer in bytes than the
sequence could hold is dropped before it is tokenised; a byte order mark is not text; a source
given twice is refused."""

import io
import json

import pytest

from diffutron_data import DataError, Pool, ReadReport, Source, build_cpt_corpus, iter_texts
from diffutron_data.corpus import cpt_recipe
from diffutron_data.lines import BYTES_PER_TOKEN, LINE_CAP, line_cap, raw_lines


def texts(path, **options):
    report = ReadReport()
    found = [text for text, _ in iter_texts(Source(str(path)), report, **options)]
    return found, report


def test_a_line_over_the_cap_is_read_past_in_pieces_never_whole():
    class Reads(io.BytesIO):
        longest = 0

        def readline(self, size=-1):
            line = super().readline(size)
            Reads.longest = max(Reads.longest, len(line))
            return line

    handle = Reads(b"short\n" + b"x" * 1000 + b"\nafter\n" + b"y" * 50)
    assert list(raw_lines(handle, 64)) == [b"short\n", None, b"after\n", b"y" * 50]
    assert Reads.longest <= 65


def test_too_long_lines_and_documents_are_counted_not_kept(tmp_path):
    path = tmp_path / "corpus.txt"
    long_line = "ğ" * 5000  # 10,000 bytes
    path.write_text(f"kısa bir cümle\n{long_line}\nbir cümle daha\n", encoding="utf-8")
    found, report = texts(path, max_bytes=9_000)
    assert found == ["kısa bir cümle", "bir cümle daha"]
    assert report.skipped == {"too_long": 1} and report.read == 3
    assert "corpus.txt:2: too long (over 9000 bytes)" in report.problems[0]
    found, report = texts(path, max_bytes=10_000)  # exactly fits: kept
    assert len(found) == 3 and not report.skipped


def test_a_paragraph_is_dropped_once_it_outgrows_the_cap(tmp_path):
    path = tmp_path / "paragraphs.txt"
    body = "\n".join(["uzun bir satır burada"] * 50)
    path.write_text(f"ilk paragraf\n\n{body}\n\nson paragraf\n", encoding="utf-8")
    report = ReadReport()
    source = Source(str(path), mode="paragraph")
    found = [t for t, _ in iter_texts(source, report, max_bytes=40)]
    assert found == ["ilk paragraf", "son paragraf"]
    assert report.skipped == {"too_long": 1}


def test_a_jsonl_line_too_long_for_any_kept_text_is_never_parsed(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "kısa"}, {"text": "ş" * 20_000}, {"text": "son"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    found, report = texts(path, max_bytes=1000)
    assert found == ["kısa", "son"] and report.skipped == {"too_long": 1}
    assert "a line over" in report.problems[0]  # past the line cap: not even decoded
    assert line_cap(1000) < len(json.dumps(rows[1])) < LINE_CAP


def test_a_byte_order_mark_is_not_text(tmp_path):
    for name, body in (("bom.txt", "merhaba dünya\n"), ("bom.jsonl", '{"text": "merhaba"}\n')):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
        found, report = texts(path)
        assert found[0] in ("merhaba dünya", "merhaba") and not report.skipped
        assert not found[0].startswith("\ufeff")


def test_a_source_given_twice_is_refused_in_one_line(tmp_path, tokenizer):
    path = tmp_path / "corpus.txt"
    path.write_text("bir\niki\n", encoding="utf-8")
    again = tmp_path / ".." / tmp_path.name / "corpus.txt"  # the same file, named otherwise
    twice = [Pool("web", [Source(str(path))]), Pool("news", [Source(str(again))])]
    with pytest.raises(DataError, match=r"is given twice \(as .*corpus.txt\); give each source"):
        cpt_recipe(twice, tokenizer, tokenizer_name="tiny")
    other = [Pool("web", [Source(str(path)), Source(str(path), mode="paragraph")])]
    cpt_recipe(other, tokenizer, tokenizer_name="tiny")  # read another way: allowed


def test_the_corpus_counts_documents_too_long_to_tokenise(tmp_path, tokenizer):
    path = tmp_path / "corpus.txt"
    huge = "a" * (16 * BYTES_PER_TOKEN + 1)
    path.write_text(f"bir cümle\n{huge}\niki cümle\n", encoding="utf-8")
    manifest = build_cpt_corpus(
        [Pool("web", [Source(str(path))])],
        tokenizer,
        tmp_path / "out",
        tokenizer_name="tiny",
        max_length=16,
    )
    assert manifest["rows"] == 2
    assert manifest["pools"][0]["dropped"]["too_long"] == 1
    assert manifest["total"]["read"] == 3


def test_a_worker_that_dies_is_one_error_not_a_hang():
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from diffutron_data.stream import _ahead

    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"))
    with pool, pytest.raises(DataError, match="a tokenising worker process died"):
        list(_ahead(pool, os._exit, iter([3, 3, 3]), 2))
