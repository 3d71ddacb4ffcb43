import json
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from diffutron_cli.evaluate import evaluate

# The shared data folder: DIFFUTRON_SHARED_DATA when set, else shared/data beside the clone.
SHARED = (
    Path(os.environ["DIFFUTRON_SHARED_DATA"]).expanduser()
    if os.environ.get("DIFFUTRON_SHARED_DATA")
    else Path(__file__).resolve().parents[3].parent / "shared" / "data"
)


def shared_file(*parts: str) -> Path:
    """A file of the shared data; skips when it is missing (fails under CI, where shared/ lies
    beside the clone, unless DIFFUTRON_SHARED_DATA names the folder explicitly)."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        message = f"shared data not found: {path} (set DIFFUTRON_SHARED_DATA to its folder)"
        if os.environ.get("CI") and not os.environ.get("DIFFUTRON_SHARED_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import ModernBertForMaskedLM

    from diffutron_data import load_tokenizer
    from diffutron_train import model_config

    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(0)
    config = model_config("tiny", vocab_size=len(tokenizer), num_hidden_layers=1)
    folder = tmp_path_factory.mktemp("model")
    ModernBertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_perplexity(tmp_path, model_dir, data: Path) -> dict:
    """``diffutron-eval perplexity`` on ``data``, twice: its JSON record, checked against what it
    prints and against a second run (deterministic)."""
    out = tmp_path / "ppl.json"
    args = ["perplexity", "--model", str(model_dir), "--data", str(data), "--max-length", "128"]
    result = CliRunner().invoke(evaluate, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["method"] == "pseudo" and record["data"] == [str(data)]
    assert f"pseudo-perplexity {record['perplexity']:.4f}" in result.output
    again = CliRunner().invoke(evaluate, args)
    assert f"pseudo-perplexity {record['perplexity']:.4f}" in again.output  # deterministic
    return record


def test_perplexity_command_prints_and_writes_json(tmp_path, model_dir):
    from diffutron_data.embedded import corpus_paths

    # The embedded news corpus: one document a line, blank lines between (not texts).
    (news,) = [p for p in corpus_paths() if p.name == "news.txt"]
    lines = news.read_text(encoding="utf-8").splitlines()
    documents = [line for line in lines if line.strip()]
    assert 0 < len(documents) < len(lines)
    record = run_perplexity(tmp_path, model_dir, news)
    assert record["texts"] == len(documents)


def test_perplexity_command_on_the_shared_ud_dev_file(tmp_path, model_dir):
    boun = shared_file("ud-turkish", "boun-dev.txt")
    assert run_perplexity(tmp_path, model_dir, boun)["texts"] == 979


def test_eval_errors_are_one_line(tmp_path, model_dir):
    missing = CliRunner().invoke(
        evaluate, ["perplexity", "--model", str(model_dir), "--data", "nope.txt"]
    )
    assert (
        missing.exit_code == 1
        and missing.output.strip() == "Error: data file nope.txt does not exist"
    )
    limit = CliRunner().invoke(evaluate, ["bench", "--model", str(model_dir), "--limit", "0"])
    assert limit.exit_code == 1 and "--limit must be at least 1" in limit.output
    unknown = CliRunner().invoke(evaluate, ["bench", "--model", str(model_dir), "--tasks", "foo"])
    assert unknown.exit_code == 1 and "unknown task(s) foo; known: belebele_tr" in unknown.output
    data = tmp_path / "metin.txt"
    data.write_text("Kedi bahçede uyuyor.\nYarın hava yağmurlu olacak.\n", encoding="utf-8")
    not_lm = CliRunner().invoke(
        evaluate, ["perplexity", "--model", str(tmp_path), "--data", str(data)]
    )
    assert not_lm.exit_code == 1 and not_lm.output.startswith("Error: cannot load directory")


def test_tasks_path_is_an_include_path_for_lm_eval():
    result = CliRunner().invoke(evaluate, ["tasks-path"])
    folder = Path(result.output.strip())
    assert (folder / "_diffutron_cetvel.yaml").is_file() and (folder / "xcopa_tr.yaml").is_file()


def test_help_shows_how_to_launch_several_processes():
    for command in ("perplexity", "bench"):
        result = CliRunner().invoke(evaluate, [command, "--help"])
        assert result.exit_code == 0
        assert f"torchrun --standalone --nproc_per_node 4 -m diffutron_cli.evaluate {command}" in (
            result.output
        )


@pytest.mark.parametrize("command", ["perplexity", "bench"])
def test_a_launch_that_cannot_start_is_one_line(monkeypatch, tmp_path, model_dir, command):
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = tmp_path / "metin.txt"
    data.write_text("Kedi bahçede uyuyor.\n", encoding="utf-8")
    args = ["--data", str(data)] if command == "perplexity" else ["--tasks", "xcopa_tr"]
    if command == "bench":
        xcopa = tmp_path / "xcopa.jsonl"
        row = {"premise": "Yerler ıslaktı.", "choice1": "Güneş parladı.", "label": 1}
        xcopa.write_text(json.dumps({**row, "choice2": "Yağmur yağdı.", "question": "cause"}))
        args += ["--data-files", f"xcopa_tr={xcopa}", "--output-dir", str(tmp_path / "bench")]
    result = CliRunner().invoke(evaluate, [command, "--model", str(model_dir), *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot start the 2-process group as rank 0 (gloo)")
    assert result.output.count("\n") == 1 and "torchrun --nproc_per_node N" in result.output
    assert not (tmp_path / "bench").exists()


@pytest.mark.slow
def test_the_documented_two_process_launch_prints_and_writes_once(tmp_path, model_dir):
    """``torchrun ... -m diffutron_cli.evaluate perplexity`` on two CPU processes: the figure of
    one process, printed and written by rank 0 alone."""
    import subprocess
    import sys

    data = tmp_path / "metin.txt"
    lines = ["Kedi bahçede uyuyor.", "Yarın hava yağmurlu olacak.", "Çocuklar okula gitti."]
    data.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    args = ["--model", str(model_dir), "--data", str(data), "--batch-size", "2", "--device", "cpu"]
    alone = CliRunner().invoke(evaluate, ["perplexity", *args, "--output", str(tmp_path / "1")])
    assert alone.exit_code == 0, alone.output
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    command = [*launch, "2", "-m", "diffutron_cli.evaluate", "perplexity", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [*command, "--output", str(tmp_path / "2")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == alone.output  # one line, from rank 0
    one, two = (json.loads((tmp_path / n).read_text()) for n in ("1", "2"))
    assert (one["processes"], two["processes"]) == (1, 2)
    figures = ("perplexity", "mean_nll")  # equal to the last bit with the same threads (eval tests)
    assert {k: v for k, v in two.items() if k not in figures} == {
        **{k: v for k, v in one.items() if k not in figures},
        "processes": 2,
    }
    assert [two[k] for k in figures] == pytest.approx([one[k] for k in figures], rel=1e-12)


def test_the_task_list_is_diffutron_evals():
    from diffutron_cli.eval_commands import TASK_NAMES
    from diffutron_eval.tasks import TASKS

    assert TASK_NAMES == TASKS and len(TASKS) == 7 and TASKS[0] == "belebele_tr"


def test_the_suites_and_likelihoods_are_diffutron_evals():
    from diffutron_cli.eval_commands import LIKELIHOODS, SUITES
    from diffutron_eval import METHODS, suites

    assert tuple(suites.SUITES) == SUITES and ("auto", *METHODS) == LIKELIHOODS
