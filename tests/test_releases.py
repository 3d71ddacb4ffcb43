"""Independent releases: bumping one package's version (in a copy of the workspace) leaves the
others locking, building and installing unchanged, since siblings are compatible ranges."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


def copy_workspace(target: Path) -> Path:
    """The files git knows (tracked, or new and not ignored), as a clean checkout has them."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in listed.splitlines():
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def locked_versions(workspace: Path) -> dict[str, str]:
    lock = tomllib.loads((workspace / "uv.lock").read_text(encoding="utf-8"))
    return {p["name"]: p.get("version", "") for p in lock["package"]}


@pytest.mark.slow
def test_bumping_one_package_leaves_the_others_unchanged(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on the PATH (the README's test command runs under it)")
    workspace = copy_workspace(tmp_path / "workspace")
    before = locked_versions(workspace)
    project = workspace / "packages" / "diffutron-common" / "pyproject.toml"
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('version = "0.1.0"', 'version = "0.1.1"', 1), "utf-8")
    changelog = workspace / "packages" / "diffutron-common" / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text(encoding="utf-8").replace(
            "## 0.1.0", "## 0.1.1\n\n- A fix.\n\n## 0.1.0"
        ),
        encoding="utf-8",
    )

    run(uv, "lock", cwd=workspace)
    after = locked_versions(workspace)
    assert after["diffutron-common"] == "0.1.1"
    assert {k: v for k, v in after.items() if k != "diffutron-common"} == {
        k: v for k, v in before.items() if k != "diffutron-common"
    }  # every other package, ours and third parties', as it was

    run(
        uv, "build", "--all-packages", "--wheel", "--out-dir", str(tmp_path / "dist"), cwd=workspace
    )
    wheels = sorted(p.name for p in (tmp_path / "dist").glob("*.whl"))
    versions = {re.sub(r"-.*", "", w): w.split("-")[1] for w in wheels}
    assert versions.pop("diffutron_common") == "0.1.1"
    assert set(versions.values()) == {"0.1.0"}, versions

    venv = tmp_path / "venv"
    run(uv, "venv", "--quiet", "--python", sys.executable, str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    (sample,) = (tmp_path / "dist").glob("diffutron_sample-*.whl")
    run(uv, "pip", "install", "--quiet", "--python", python, "--find-links", str(tmp_path / "dist"),
        "--refresh-package=diffutron-common", str(sample), cwd=tmp_path)  # fmt: skip
    installed = run(
        python,
        "-c",
        "from importlib.metadata import version as v; import diffutron_sample; "
        "print(v('diffutron-sample'), v('diffutron-common'), v('diffutron-core'))",
        cwd=tmp_path,
    )
    assert installed.split() == ["0.1.0", "0.1.1", "0.1.0"]  # the unchanged sample takes the fix
