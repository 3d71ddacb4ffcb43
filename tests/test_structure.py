"""The code keeps the shape docs/architecture.md describes: no import cycle, no import hidden in a
function to dodge one, short modules and functions, public entry points, and user errors that the
apps print as one line."""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "diffutron_common": ROOT / "packages/diffutron-common/src/diffutron_common",
    "diffutron_core": ROOT / "packages/diffutron-core/src/diffutron_core",
    "diffutron_data": ROOT / "packages/diffutron-data/src/diffutron_data",
    "diffutron_train": ROOT / "packages/diffutron-train/src/diffutron_train",
    "diffutron_sample": ROOT / "packages/diffutron-sample/src/diffutron_sample",
    "diffutron_eval": ROOT / "packages/diffutron-eval/src/diffutron_eval",
    "diffutron_serve": ROOT / "packages/diffutron-serve/src/diffutron_serve",
}
APP = ROOT / "apps/diffutron-cli/src/diffutron_cli"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def sources(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "resources" not in p.parts)


def module_name(path: Path, package: str) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


def top_level_imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that ``path`` imports when it is imported."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            if node.module == package:  # `from pkg import module` names a module
                found |= {f"{package}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(f"{package}.")}
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_package_has_an_import_cycle(package):
    modules = {module_name(p, package): p for p in sources(PACKAGES[package])}
    edges = {
        name: {m for m in top_level_imports(path, package) if m in modules and m != package}
        for name, path in modules.items()
        if name != package  # __init__ re-exports; a module never imports it
    }
    done, active = set(), []

    def visit(name):
        if name in active:
            cycle = [*active[active.index(name) :], name]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        active.append(name)
        for target in edges.get(name, ()):
            visit(target)
        active.pop()
        done.add(name)

    for name in edges:
        visit(name)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_workspace_import_is_hidden_inside_a_function(package):
    """Inside a function a package imports only third-party modules (heavy ones load when used);
    an import of the workspace's own code there would only dodge a cycle."""
    hidden = []
    for path in sources(PACKAGES[package]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                if any(n.startswith("diffutron_") for n in names):
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hidden, hidden


def all_sources():
    yield from (p for folder in PACKAGES.values() for p in sources(folder))
    yield from sources(APP)


def test_modules_and_functions_are_short_enough_to_read_in_one_sitting():
    long_modules, long_functions = [], []
    for path in all_sources():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}: {length}")
    assert not long_modules, long_modules
    assert not long_functions, long_functions


def test_readmes_import_only_the_public_api():
    """Each README's examples import from a package's top level, where its entry points are."""
    for readme in [*ROOT.glob("packages/*/README.md"), ROOT / "README.md"]:
        for block in re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffutron"):
                    assert "." not in node.module, f"{readme}: from {node.module} import …"
                    package = importlib.import_module(node.module)
                    for alias in node.names:
                        assert alias.name in package.__all__, f"{readme}: {alias.name}"


def exception_classes():
    """Every exception class defined in the libraries, with the package it belongs to."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [
            info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
        ]
        for name in names:
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == name:
                    yield package, cls


INTERNAL = {"diffutron_data.instructions.RowError"}
"""Raised and caught inside its package, never shown to a user as it is."""


def test_every_library_error_is_a_user_error_the_apps_print_as_one_line():
    from diffutron_cli.options import friendly_errors
    from diffutron_common import DiffutronError

    found = {
        f"{cls.__module__}.{cls.__qualname__}": (package, cls)
        for package, cls in exception_classes()
    }
    public = {name: entry for name, entry in found.items() if name not in INTERNAL}
    assert {"DataError", "TrainError", "SampleError", "EvalError"} <= {
        cls.__name__ for _, cls in public.values()
    }
    for name, (package, cls) in public.items():
        assert issubclass(cls, DiffutronError), f"{name} is not a DiffutronError"
        assert name.startswith(f"{package}."), name  # a class of the package that raises it

        @friendly_errors
        def command(cls=cls):
            raise cls(f"{cls.__name__}: what went wrong; what to do")

        import click

        result = CliRunner().invoke(click.command()(command))
        assert result.exit_code == 1, (name, result.output)
        assert result.output == f"Error: {cls.__name__}: what went wrong; what to do\n", name
    for name in INTERNAL:
        assert name in found, f"{name} no longer exists: drop it from INTERNAL"
