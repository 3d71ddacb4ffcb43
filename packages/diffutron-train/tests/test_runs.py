"""The run folder's rules (diffutron_train.runs.start_run), one by one."""

import json

import pytest

from diffutron_train import TrainError, start_run
from diffutron_train.runs import RUN_FILE, undo_if_failed

SETTINGS = {"preset": "tiny", "output_dir": "a", "loop": {"learning_rate": 0.1, "log_every": 10}}


def trained(folder, settings=SETTINGS, *, step=4, run_id=None):
    """A run folder as a finished (or, with another run_id, a stale) run leaves it."""
    state = start_run(settings, folder, resume=False)
    (folder / "checkpoints" / f"step-{step}").mkdir(parents=True)
    (folder / "model").mkdir()
    marker = {"kind": "model", "step": step, "run": run_id or state.run_id}
    (folder / "model" / ".diffutron.json").write_text(json.dumps(marker), encoding="utf-8")
    return state


def test_settings_that_do_not_change_the_result_are_recorded_but_not_compared(tmp_path):
    trained(tmp_path / "run")
    moved = {**SETTINGS, "output_dir": "b", "loop": {**SETTINGS["loop"], "log_every": 1}}
    assert start_run(moved, tmp_path / "run", resume=False).finished
    with pytest.raises(TrainError, match=r"holds a different run \(loop.learning_rate differ\)"):
        start_run(
            {**SETTINGS, "loop": {"learning_rate": 0.2, "log_every": 10}},
            tmp_path / "run",
            resume=False,
        )


def test_a_model_exported_by_other_settings_does_not_make_the_run_finished(tmp_path):
    """Extended with --resume, then stopped before its next checkpoint: run.json holds the new
    length, the model is the old length's. That is an unfinished run, never a finished one."""
    trained(tmp_path / "run", run_id="0123456789abcdef")
    with pytest.raises(TrainError, match="holds an unfinished run"):
        start_run(SETTINGS, tmp_path / "run", resume=False)
    assert start_run(SETTINGS, tmp_path / "run", resume=True).resume


def test_a_trained_folder_without_its_record_is_refused(tmp_path):
    trained(tmp_path / "run")
    (tmp_path / "run" / RUN_FILE).unlink()
    with pytest.raises(TrainError, match=r"holds checkpoints or a model but no run\.json"):
        start_run(SETTINGS, tmp_path / "run", resume=False)


def test_a_resume_to_a_new_length_is_recorded_only_once_training_starts(tmp_path):
    trained(tmp_path / "run")
    longer = {**SETTINGS, "loop": {**SETTINGS["loop"], "max_steps": 8}}
    state = start_run(longer, tmp_path / "run", resume=True)
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["loop"].get("max_steps") is None
    state.commit()
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["loop"]["max_steps"] == 8


@pytest.mark.parametrize("existed", [False, True], ids=["new", "users-empty-folder"])
def test_a_start_that_fails_on_bad_input_leaves_nothing_but_the_users_folder(tmp_path, existed):
    folder = tmp_path / "run"
    if existed:
        folder.mkdir()
    state = start_run(SETTINGS, folder, resume=False)
    (folder / "data").mkdir()
    with pytest.raises(TrainError), undo_if_failed(state):
        raise TrainError("the corpus has no usable rows")
    assert folder.exists() == existed
    assert not existed or not any(folder.iterdir())
    state = start_run(SETTINGS, tmp_path / "kept", resume=False)
    with pytest.raises(KeyboardInterrupt), undo_if_failed(state):
        raise KeyboardInterrupt  # an interruption keeps the run for --resume
    assert (tmp_path / "kept" / RUN_FILE).is_file()
