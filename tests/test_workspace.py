"""The workspace keeps its shape: one-way dependencies, lockstep versions, standalone packages."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = {
    "diffutron-common": ROOT / "packages/diffutron-common",
    "diffutron-core": ROOT / "packages/diffutron-core",
    "diffutron-data": ROOT / "packages/diffutron-data",
    "diffutron-train": ROOT / "packages/diffutron-train",
    "diffutron-sample": ROOT / "packages/diffutron-sample",
    "diffutron-eval": ROOT / "packages/diffutron-eval",
    "diffutron-serve": ROOT / "packages/diffutron-serve",
    "diffutron-cli": ROOT / "apps/diffutron-cli",
}
# docs/architecture.md#dependencies-point-one-way: common (the shared policies; standard library
# only) <- every package; core <- sample; core, data, sample <- train (the learned commit policy
# runs the sampler); core, sample <- eval, serve.
ALLOWED = {
    "diffutron-common": set(),
    "diffutron-core": set(),
    "diffutron-data": {"diffutron-common"},
    "diffutron-sample": {"diffutron-common", "diffutron-core"},
    "diffutron-train": {"diffutron-common", "diffutron-core", "diffutron-data", "diffutron-sample"},
    "diffutron-eval": {"diffutron-common", "diffutron-core", "diffutron-sample"},
    "diffutron-serve": {"diffutron-common", "diffutron-core", "diffutron-sample"},
    "diffutron-cli": set(MEMBERS) - {"diffutron-cli"},
}


def project(name):
    return tomllib.loads((MEMBERS[name] / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_every_member_is_in_the_workspace_glob():
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "project" not in root  # a virtual root
    assert root["tool"]["uv"]["workspace"]["members"] == ["packages/*", "apps/*"]
    found = {p.parent.name for p in ROOT.glob("packages/*/pyproject.toml")}
    found |= {p.parent.name for p in ROOT.glob("apps/*/pyproject.toml")}
    assert found == set(MEMBERS)


@pytest.mark.parametrize("name", list(MEMBERS))
def test_member_layout(name):
    module = name.replace("-", "_")
    path = MEMBERS[name]
    assert (path / "README.md").is_file()
    assert (path / "src" / module / "__init__.py").is_file()
    assert (path / "src" / module / "py.typed").is_file()
    assert list((path / "tests").glob("test_*.py")), f"{name} has no tests"


@pytest.mark.parametrize("name", list(MEMBERS))
def test_dependencies_point_one_way_and_are_declared_as_sources(name):
    meta = project(name)
    internal = {
        requirement_name(r) for r in meta["project"]["dependencies"] if r.startswith("diffutron-")
    }
    assert internal == ALLOWED[name]
    sources = meta.get("tool", {}).get("uv", {}).get("sources", {})
    assert {k for k, v in sources.items() if v == {"workspace": True}} == internal


def test_core_depends_on_torch_only():
    assert [requirement_name(r) for r in project("diffutron-core")["project"]["dependencies"]] == [
        "torch"
    ]


@pytest.mark.parametrize("name", list(MEMBERS))
def test_siblings_are_compatible_ranges_that_hold_their_current_version(name):
    """Independent releases: a package pins no sibling exactly, so a fix to one can be released
    alone; the range holds the sibling's version and stops before its next minor (0.x)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    for line in project(name)["project"]["dependencies"]:
        requirement = Requirement(line)
        if not requirement.name.startswith("diffutron-"):
            continue
        current = Version(project(requirement.name)["project"]["version"])
        assert not any(s.operator == "==" for s in requirement.specifier), line
        assert current in requirement.specifier, (line, current)
        assert Version(f"{current.major}.{current.minor + 1}.0") not in requirement.specifier, line


@pytest.mark.parametrize("name", list(MEMBERS))
def test_each_member_has_a_changelog_that_names_its_version(name):
    changelog = (MEMBERS[name] / "CHANGELOG.md").read_text(encoding="utf-8")
    version = project(name)["project"]["version"]
    first = re.search(r"^## (\S+)", changelog, flags=re.M)
    assert first is not None and first.group(1) == version, (name, version)


def locked_closure(package: str) -> set[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    graph = {p["name"]: {d["name"] for d in p.get("dependencies", [])} for p in lock["package"]}
    seen, todo = set(), [package]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return seen


def test_sample_installs_without_training_or_evaluation_stacks():
    closure = locked_closure("diffutron-sample")
    assert {"diffutron-core", "torch", "transformers"} <= closure
    assert not closure & {
        "datasets",
        "peft",
        "bitsandbytes",
        "lm-eval",
        "accelerate",
        "diffutron-data",
        "fastapi",
        "uvicorn",
        "diffutron-serve",
    }


def test_common_needs_the_standard_library_only():
    assert project("diffutron-common")["project"]["dependencies"] == []
    assert locked_closure("diffutron-common") == {"diffutron-common"}


def test_core_installs_without_transformers():
    closure = locked_closure("diffutron-core")
    assert "torch" in closure and "transformers" not in closure
