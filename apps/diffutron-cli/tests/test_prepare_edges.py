"""`prepare` at the edges, in a process of its own: a 200 MB file with no newline (built here,
not committed) is refused in one line with bounded memory, and SIGTERM part-way through
tokenising (a corpus, or instruction rows) ends the build promptly, leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffutron_common import is_temp

PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(__import__("json").dumps({"code": done.returncode, "err": done.stderr, "peak": peak}))
"""


def environment() -> dict[str, str]:
    return {**os.environ, "DIFFUTRON_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}


def prepare(source: Path, output: Path, *extra: str, kind: str = "cpt") -> list[str]:
    argv = [sys.executable, "-m", "diffutron_cli.train", "prepare", kind, "--preset", "tiny"]
    return [*argv, "--source", str(source), "--output-dir", str(output), *extra]


def peak_of(argv: list[str]) -> dict:
    """The command's exit code, standard error and peak resident memory (bytes), measured
    from a parent of its own (no other child to confuse the count)."""
    wrapper = [sys.executable, "-c", PEAK, *argv]
    done = subprocess.run(wrapper, env=environment(), capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout)


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_temp(p))


@pytest.mark.slow
def test_a_200_mb_line_is_one_line_of_error_in_bounded_memory(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("Bugün hava çok güzel.\nKedi süt içer.\n", encoding="utf-8")
    baseline = peak_of(prepare(small, tmp_path / "small-out"))
    assert baseline["code"] == 0, baseline["err"][-2000:]
    huge = tmp_path / "one-line.txt"
    with huge.open("wb") as handle:
        piece = "kedi süt içer ".encode() * 4096
        for _ in range(200 * 2**20 // len(piece)):
            handle.write(piece)
    got = peak_of(prepare(huge, tmp_path / "out"))
    errors = [line for line in got["err"].splitlines() if line.startswith("Error:")]
    assert got["code"] == 1 and len(errors) == 1, got["err"][-2000:]
    assert "no usable text (1 record(s) skipped" in errors[0] and "too long" in errors[0]
    assert "Traceback" not in got["err"]
    # the file is read in pieces: what it costs is the program's own memory, not the line's
    assert got["peak"] < baseline["peak"] + 200 * 2**20, (got["peak"], baseline["peak"])
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "processes"),
    [("cpt", "1"), ("cpt", "2"), ("sft", "2")],
    ids=["cpt-1", "cpt-2", "sft-2"],
)
def test_sigterm_while_tokenising_ends_prepare_promptly_leaving_nothing(tmp_path, kind, processes):
    line = "Bugün hava çok güzel ve kediler bahçede süt içip uyuyor."
    if kind == "cpt":
        source, started = tmp_path / "corpus.txt", "pool-0-kept.arrow"
        source.write_text(f"{line}\n" * 400_000, encoding="utf-8")  # 24 MB: tens of seconds
    else:
        source, started = tmp_path / "rows.jsonl", "rows.arrow"
        row = json.dumps({"instruction": line, "input": line, "output": line}, ensure_ascii=False)
        source.write_text(f"{row}\n" * 150_000, encoding="utf-8")  # 27 MB of rows
    output = tmp_path / "out"
    process = subprocess.Popen(
        prepare(source, output, "--num-proc", processes, kind=kind),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(p.name == started for p in tmp_path.rglob("*")):
            break  # tokenising has begun
        time.sleep(0.05)
    time.sleep(1.0)
    assert process.poll() is None, "prepare ended before it could be interrupted"
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=120)  # a hang fails here, not a slow machine
    took = time.monotonic() - sent
    assert process.returncode in (143, -signal.SIGTERM), errors[-2000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert not output.exists() and leftovers(tmp_path) == [], (took, sorted(tmp_path.rglob("*")))
