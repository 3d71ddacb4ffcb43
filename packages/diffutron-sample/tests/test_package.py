import subprocess
import sys
from importlib.metadata import version

import diffutron_sample


def test_version_is_the_distribution_version():
    assert diffutron_sample.__version__ == version("diffutron-sample")


def test_import_stays_out_of_training_and_evaluation_stacks():
    code = (
        "import sys, diffutron_sample\n"
        "heavy = [m for m in ('datasets', 'peft', 'bitsandbytes', 'lm_eval', 'accelerate') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
