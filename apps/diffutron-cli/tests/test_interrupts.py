"""A training run killed at random points (SIGTERM and SIGKILL, several times, in every phase:
start-up, data building, training, checkpoint writing, export) and resumed each time ends with
exactly the weights of a run that never stopped, and leaves no temporary file behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffutron_common import is_temp

TEXT = "\n".join(
    [
        "Bugün hava çok güzel.",
        "Kedi süt içer ve uyur.",
        "Yarın okula gideceğim.",
        "Kitaplar insanın en iyi dostudur.",
        "Deniz kenarında yürüdük.",
        "Annem bize çay yaptı.",
        "Trenler her sabah erkenden kalkar.",
        "Çocuklar bahçede top oynuyor.",
    ]
)
SETTINGS = ["--max-steps", "16", "--save-every", "2", "--log-every", "1", "--batch-size", "4"]


def command(run: Path, source: Path, *, resume: bool) -> list[str]:
    argv = [sys.executable, "-m", "diffutron_cli.train", "cpt", "--output-dir", str(run)]
    return [*argv, "--source", str(source), *SETTINGS, *(["--resume"] if resume else [])]


def environment() -> dict[str, str]:
    return {**os.environ, "DIFFUTRON_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}


def logged_step(run: Path) -> int:
    """The last step in a run's log.jsonl (0 before any), read while the run writes it."""
    try:
        lines = (run / "log.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line being written
    return max(steps, default=0)


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_temp(p))


@pytest.mark.slow
def test_runs_killed_at_random_points_resume_to_the_same_weights(tmp_path):
    source = tmp_path / "text.txt"
    source.write_text(TEXT + "\n", encoding="utf-8")
    reference = tmp_path / "reference"
    start = time.monotonic()
    done = subprocess.run(
        command(reference, source, resume=False),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    full = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-2000:]
    expected = load_file(reference / "model" / "model.safetensors")

    rng = random.Random(20261128)
    run = tmp_path / "interrupted"
    # Where to kill: once during start-up (a random delay), then at random steps, each a random
    # moment after the step was logged (inside the next step, or while a checkpoint is written),
    # never later than the step after it: the run (16 steps) must still be going when it is hit.
    plan = [None, *sorted(rng.sample(range(1, 14), 4))]
    outcomes = []
    for attempt, target in enumerate(plan):
        process = subprocess.Popen(
            command(run, source, resume=(run / "run.json").is_file()),
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        kill = signal.SIGTERM if attempt % 2 == 0 else signal.SIGKILL
        if target is None:  # during start-up: before the first step is logged, whatever the pace
            until = time.monotonic() + rng.uniform(0.5, 0.5 * full)
            while process.poll() is None and logged_step(run) < 1 and time.monotonic() < until:
                time.sleep(0.02)
        else:
            while process.poll() is None and logged_step(run) < target:
                time.sleep(0.02)
            until = time.monotonic() + rng.uniform(0.0, 0.3)
            while time.monotonic() < until and logged_step(run) < target + 2:
                time.sleep(0.01)
        process.send_signal(kill)
        _, errors = process.communicate(timeout=120)
        newest = sorted((run / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))
        reached = newest[-1].name if newest else "no checkpoint"
        outcomes.append((kill.name, target, process.returncode, reached))
        assert process.returncode in (143, -signal.SIGTERM, -signal.SIGKILL), (outcomes, errors)
        assert "Traceback" not in errors, errors[-3000:]
    final = subprocess.run(
        command(run, source, resume=(run / "run.json").is_file()),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, (outcomes, final.stderr[-2000:])
    got = load_file(run / "model" / "model.safetensors")
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), (name, outcomes)
    assert leftovers(run) == [], outcomes
    assert leftovers(tmp_path) == []
    steps = [line for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines() if line]
    from diffutron_train import read_log

    assert [r["step"] for r in read_log(run / "log.jsonl")] == list(range(1, 17))
    assert len(steps) >= 16
