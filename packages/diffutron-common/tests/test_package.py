import subprocess
import sys
from importlib.metadata import requires

import diffutron_common


def test_public_api_is_exported():
    for name in diffutron_common.__all__:
        assert hasattr(diffutron_common, name), name


def test_needs_the_standard_library_only():
    assert not requires("diffutron-common")
    heavy = ("torch", "transformers", "datasets", "click", "yaml")
    code = f"import sys, diffutron_common; print(sorted(set({heavy!r}) & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
