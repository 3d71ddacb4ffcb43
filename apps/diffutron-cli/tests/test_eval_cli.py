import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from diffutron_cli.evaluate import evaluate

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


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


def test_perplexity_command_prints_and_writes_json(tmp_path, model_dir):
    out = tmp_path / "ppl.json"
    args = [
        "perplexity",
        "--model",
        str(model_dir),
        "--data",
        str(SHARED / "ud-turkish" / "boun-dev.txt"),
    ]
    result = CliRunner().invoke(evaluate, [*args, "--max-length", "128", "--output", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["texts"] == 979 and record["method"] == "pseudo"
    assert f"pseudo-perplexity {record['perplexity']:.4f}" in result.output
    again = CliRunner().invoke(evaluate, [*args, "--max-length", "128"])
    assert f"pseudo-perplexity {record['perplexity']:.4f}" in again.output  # deterministic


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
    not_lm = CliRunner().invoke(
        evaluate,
        [
            "perplexity",
            "--model",
            str(tmp_path),
            "--data",
            str(SHARED / "ud-turkish" / "boun-dev.txt"),
        ],
    )
    assert not_lm.exit_code == 1 and not_lm.output.startswith("Error: cannot load directory")


def test_tasks_path_is_an_include_path_for_lm_eval():
    result = CliRunner().invoke(evaluate, ["tasks-path"])
    folder = Path(result.output.strip())
    assert (folder / "_diffutron_cetvel.yaml").is_file() and (folder / "xcopa_tr.yaml").is_file()
