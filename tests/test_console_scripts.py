"""The installed console scripts answer --help and --version as a user would call them."""

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

SCRIPTS = ["diffutron", "diffutron-train", "diffutron-sample", "diffutron-eval"]


def script_path(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"console script {name} is not installed"
    return found


def test_the_app_declares_exactly_these_scripts():
    declared = {
        ep.name
        for ep in entry_points(group="console_scripts")
        if ep.value.startswith("diffutron_cli.")
    }
    assert declared == set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help_and_version(name):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    help_run = subprocess.run(
        [script_path(name), "--help"], capture_output=True, text=True, env=env
    )
    assert help_run.returncode == 0, help_run.stderr
    assert help_run.stdout.startswith(f"Usage: {name} ")
    version_run = subprocess.run([script_path(name), "-V"], capture_output=True, text=True, env=env)
    assert version_run.returncode == 0 and version_run.stdout.startswith(f"{name}, version ")
