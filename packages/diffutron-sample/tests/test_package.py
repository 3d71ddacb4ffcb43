import subprocess
import sys


def test_import_stays_out_of_training_and_evaluation_stacks():
    heavy = {"datasets", "peft", "bitsandbytes", "lm_eval", "accelerate"}
    code = f"import sys, diffutron_sample; print(sorted({heavy!r} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
