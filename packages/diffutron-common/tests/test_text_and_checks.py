import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffutron_common import (
    DecodeError,
    DiffutronError,
    ReadError,
    check_number,
    iter_lines,
    one_line_text,
    read_text,
    reason,
)


def test_read_text_names_the_line_and_byte_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Merhaba\nGüzel gün\n".encode("latin-1"))
    with pytest.raises(DecodeError) as info:
        read_text(path)
    assert str(info.value) == (
        f"{path}:2: not valid UTF-8 (byte 0xfc at column 2); save the file as UTF-8"
    )


def test_read_text_drops_a_byte_order_mark_and_reports_unreadable_paths(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfsatir\n")
    assert read_text(path) == "satir\n"
    with pytest.raises(ReadError, match="does not exist"):
        read_text(tmp_path / "missing.txt", what="prompts file")
    with pytest.raises(ReadError, match="is a folder, not a file"):
        read_text(tmp_path)


def test_iter_lines_stops_or_reports_a_bad_line_as_asked(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"bir\r\n\xff\xfeiki\nuc")
    with pytest.raises(DecodeError, match=r":2: not valid UTF-8 \(byte 0xff at column 1\)"):
        list(iter_lines(path))
    problems = []
    lines = list(iter_lines(path, on_error=lambda n, m: problems.append((n, m))))
    assert lines == [(1, "bir"), (3, "uc")]
    assert [n for n, _ in problems] == [2]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_are_text_or_one_line_decode_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.txt"
    path.write_bytes(data)
    for read in (lambda: read_text(path), lambda: list(iter_lines(path))):
        try:
            read()
        except DiffutronError as exc:
            assert isinstance(exc, DecodeError) and "\n" not in str(exc)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (math.nan, {}, "lr must be a finite number, got nan"),
        (math.inf, {"minimum": 0}, "lr must be a finite number, got inf"),
        ("0.1", {}, "lr must be a finite number, got '0.1'"),
        (True, {"integer": True}, "lr must be a whole number, got True"),
        (2.0, {"integer": True, "minimum": 1}, "lr must be a whole number >= 1, got 2.0"),
        (0, {"minimum": 0, "min_open": True}, "lr must be a number > 0, got 0"),
        (1.5, {"minimum": 0, "maximum": 1}, r"lr must be a number in \[0, 1\], got 1.5"),
        (-1, {"maximum": 0, "max_open": True, "hint": "h"}, None),
    ],
)
def test_check_number(value, kwargs, message):
    if message is None:
        assert check_number("lr", value, **kwargs) == -1
        return
    with pytest.raises(DiffutronError, match=message):
        check_number("lr", value, **kwargs)


def test_check_number_raises_the_callers_error_type():
    class TrainError(DiffutronError, ValueError):
        pass

    with pytest.raises(TrainError):
        check_number("batch_size", 0, minimum=1, integer=True, error=TrainError)


def test_errors_are_one_line():
    assert str(DiffutronError("first\n\n  second  \n")) == "first / second"
    assert one_line_text("a\r\nb") == "a / b"
    assert reason(OSError("")) == "OSError"
    assert reason(ValueError("\n  bad value\nmore")) == "bad value"
