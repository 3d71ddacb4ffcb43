import json

import pytest
from click.testing import CliRunner

from diffutron_cli.train import train


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_prepare_cpt_tiny_preset(tmp_path):
    out = tmp_path / "cpt"
    result = CliRunner().invoke(
        train, ["prepare", "cpt", "--output-dir", str(out), "--max-length", "120"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["max_length"] == 120 and manifest["tokenizer"] == "tiny"
    assert f"saved {manifest['rows']} rows" in result.output
    assert "padding at batch 64" in result.output


def test_prepare_cpt_from_a_local_file_with_sampling(tmp_path):
    source = tmp_path / "docs.txt"
    source.write_text(
        "".join(f"Bu {i}. belge kısa bir cümledir.\n" for i in range(30)), encoding="utf-8"
    )
    out = tmp_path / "cpt"
    result = CliRunner().invoke(
        train,
        [
            "prepare",
            "cpt",
            "--source",
            str(source),
            "--sample-size",
            "10",
            "--output-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] == 10 and manifest["total"]["not_sampled"] == 20


def test_prepare_sft_tiny_preset_with_synthetic_tasks(tmp_path):
    out = tmp_path / "sft"
    result = CliRunner().invoke(
        train, ["prepare", "sft", "--output-dir", str(out), "--synthetic", "4"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    # the tiny preset's three graded tasks
    assert manifest["extra"]["name"] == "synthetic" and manifest["extra"]["conversations"] == 3 * 4
    assert manifest["read"] == manifest["kept"] + sum(manifest["dropped"].values())
    chosen = ["--synthetic-task", "plural", "--synthetic-task", "word_count"]
    args = ["prepare", "sft", "--output-dir", str(tmp_path / "two"), "--synthetic", "4", *chosen]
    assert CliRunner().invoke(train, args).exit_code == 0
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["extra"]["conversations"] == 2 * 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prepare", "cpt", "--source", "nowhere.txt"], "Error: file not found: nowhere.txt"),
        (["prepare", "cpt", "--source", "hub:x/y?colour=red"], "unknown option(s) colour"),
        (["prepare", "sft", "--source", "hub:diffutron-test/missing"], "cannot load Hub dataset"),
        (["prepare", "cpt", "--tokenizer", "/no/such/tokenizer"], "cannot load tokenizer"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, args, message):
    result = CliRunner().invoke(train, [*args, "--output-dir", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
