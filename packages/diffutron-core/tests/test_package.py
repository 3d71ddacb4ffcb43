import subprocess
import sys

import diffutron_core


def test_public_api_is_exported():
    for name in diffutron_core.__all__:
        assert hasattr(diffutron_core, name), name


def test_import_pulls_in_torch_only():
    heavy = {"transformers", "datasets", "peft", "accelerate", "lm_eval"}
    code = f"import sys, diffutron_core; print(sorted({heavy!r} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
