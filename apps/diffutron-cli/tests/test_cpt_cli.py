import json

import pytest
from click.testing import CliRunner

from diffutron_cli.train import train


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_dry_run_of_the_paper_preset_reads_14_94_percent():
    result = CliRunner().invoke(train, ["cpt", "--dry-run", "--preset", "paper"])
    assert result.exit_code == 0, result.output
    assert "trainable parameters: 54,067,200 of 361,853,440 (14.94%)" in result.output
    assert '"r": 256' in result.output and '"batch_size": 64' in result.output


def test_tiny_cpt_trains_checkpoints_and_exports(tmp_path):
    out = tmp_path / "run"
    args = ["cpt", "--output-dir", str(out), "--max-steps", "4", "--save-every", "2"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert f"model saved to {out / 'model'}" in result.output
    from transformers import AutoModelForMaskedLM

    assert AutoModelForMaskedLM.from_pretrained(out / "model").config.model_type == "modernbert"
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [
        4
    ]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [4]
    again = CliRunner().invoke(train, [*args, "--lr", "0.1"])
    assert again.exit_code == 1 and "holds a different run" in again.output
    assert again.output.count("\n") == 1


def test_resume_without_a_run_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(train, ["cpt", "--output-dir", str(tmp_path / "none"), "--resume"])
    assert result.exit_code == 1 and "holds no run to resume" in result.output


def test_a_folder_where_nothing_was_trained_can_be_reused(tmp_path):
    from diffutron_train import start_run

    out = tmp_path / "run"
    start_run({"preset": "paper"}, out, resume=False)  # a run that stopped before training
    result = CliRunner().invoke(train, ["cpt", "--output-dir", str(out), "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["preset"] == "tiny"


def test_a_run_that_fails_before_training_leaves_nothing_behind(tmp_path):
    out = tmp_path / "run"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    failed = CliRunner().invoke(train, ["cpt", "--output-dir", str(out), "--source", str(empty)])
    assert failed.exit_code == 1 and "no usable text" in failed.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]


def test_a_run_whose_data_came_from_other_sources_rebuilds_it_before_training(tmp_path):
    """The issue's example: a run folder reused with other --source trained on the old corpus."""
    from diffutron_data import Pool, Source, build_cpt_corpus, load_tokenizer
    from diffutron_train import start_run

    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("Eski bir cümle.\nEski başka bir cümle.\n", encoding="utf-8")
    new.write_text("Yepyeni bir cümle.\nBambaşka yeni bir cümle.\nÜçüncü cümle.\n", "utf-8")
    run = tmp_path / "run"
    start_run({"preset": "tiny"}, run, resume=False)  # stopped after building its data
    build_cpt_corpus(
        [Pool("sources", [Source(str(old))])],
        load_tokenizer("tiny"),
        run / "data",
        tokenizer_name="tiny",
        max_length=256,
    )
    argv = ["cpt", "--output-dir", str(run), "--source", str(new), "--max-steps", "1"]
    result = CliRunner().invoke(train, argv)
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "data" / "manifest.json").read_text(encoding="utf-8"))
    (used,) = manifest["pools"][0]["sources"]
    assert used["location"] == str(new) and manifest["rows"] == 3


def test_data_takes_a_file_as_well_as_a_prepared_folder(tmp_path):
    """What a user types first: --data my-corpus.txt works like --source my-corpus.txt."""
    text = tmp_path / "corpus.txt"
    text.write_text("Bugün hava çok güzel.\nKedi süt içer.\n", encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        train, ["cpt", "--data", str(text), "--output-dir", str(out), "--max-steps", "1"]
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["data"] is None and run["sources"] == [str(text)]
    missing = CliRunner().invoke(train, ["cpt", "--data", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "does not exist; give a folder made by 'prepare cpt'" in (
        missing.output
    )
    wrong = CliRunner().invoke(train, ["sft", "--data", str(tmp_path / "corpus.csv")])
    assert wrong.exit_code == 1 and "does not exist" in wrong.output
