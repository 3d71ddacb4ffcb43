import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from diffutron_cli.train import train
from diffutron_cli.train_options import bundled_configs


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def dry(args):
    result = CliRunner().invoke(train, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    start = result.output.index("{")
    return json.loads(result.output[start : result.output.rindex("}") + 1])


PRESETS = {
    "paper-cpt": ["cpt", "--preset", "paper"],
    "tiny-cpt": ["cpt", "--preset", "tiny"],
    "paper-sft-stage1": ["sft", "--preset", "paper", "--stage", "1"],
    "paper-sft-stage2": ["sft", "--preset", "paper", "--stage", "2"],
    "tiny-sft": ["sft", "--preset", "tiny"],
}


def test_every_stage_has_a_bundled_config():
    assert bundled_configs() == sorted(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_bundled_config_states_its_preset_exactly(name):
    command = PRESETS[name][0]
    assert dry([command, "--config", name]) == dry(PRESETS[name])


def test_the_command_line_wins_over_the_config_file():
    run = dry(["cpt", "--config", "paper-cpt", "--lr", "1e-5", "--lora-r", "8"])
    assert run["loop"]["learning_rate"] == 1e-5 and run["lora"]["r"] == 8
    assert run["loop"]["batch_size"] == 64  # the rest stays the file's


def test_a_users_config_file_may_use_flag_names_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "preset: tiny\nlr: 0.01\nlora: true\nlora-r: 4\nbatch-size: 3\n", encoding="utf-8"
    )
    run = dry(["cpt", "--config", str(good)])
    assert run["loop"]["learning_rate"] == 0.01 and run["loop"]["batch_size"] == 3
    assert run["lora"]["r"] == 4  # "lora: true" reached --lora/--no-lora (use_lora)
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nbatch_szie: 3\n", encoding="utf-8")
    result = CliRunner().invoke(train, ["cpt", "--config", str(bad), "--dry-run"])
    assert result.exit_code == 2 and "unknown option(s) batch_szie for 'cpt'" in result.output


def test_accelerate_loads_the_shipped_launch_configs():
    from importlib.resources import as_file, files

    from accelerate.commands.config.config_args import load_config_from_file

    expected = {"1gpu": (1, 1, "NO"), "2gpu": (2, 1, "MULTI_GPU"), "2nodes": (16, 2, "MULTI_GPU")}
    for name, (processes, machines, kind) in expected.items():
        with as_file(files("diffutron_cli") / "configs" / "accelerate" / f"{name}.yaml") as path:
            config = load_config_from_file(str(path))
        found = (config.num_processes, config.num_machines, config.distributed_type.value)
        assert found == (processes, machines, kind)
        assert config.mixed_precision == "bf16"
    listed = CliRunner().invoke(train, ["configs"]).output
    assert "accelerate/2gpu" in listed and "accelerate/2nodes" in listed
    assert "paper-sft-stage2" in listed


def test_push_to_hub_uploads_the_exported_model(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs["private"]))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, *, folder_path, repo_id, **kwargs):
            calls.append(("upload", repo_id, sorted(os.listdir(folder_path))))

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "run"
    args = ["cpt", "--output-dir", str(out), "--max-steps", "2", "--push-to-hub", "me/tiny"]
    result = CliRunner().invoke(train, [*args, "--private"])
    assert result.exit_code == 0, result.output
    assert "uploaded to https://huggingface.co/me/tiny" in result.output
    assert calls[0] == ("create", "me/tiny", True)
    assert calls[1][:2] == ("upload", "me/tiny") and "model.safetensors" in calls[1][2]


def test_push_to_hub_failure_is_one_line(tmp_path, monkeypatch):
    class Offline:
        def create_repo(self, repo_id, **kwargs):
            raise OSError("offline mode is enabled\nmore detail")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", Offline)
    args = ["cpt", "--output-dir", str(tmp_path / "r"), "--max-steps", "1", "--push-to-hub", "a/b"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: --push-to-hub a/b: offline mode is enabled"
    )


@pytest.mark.slow
def test_cpt_runs_on_two_processes_under_torchrun(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "diffutron_cli.train",
        "cpt",
        "--output-dir",
        str(out),
        "--max-steps",
        "3",
        "--save-every",
        "2",
        "--log-every",
        "1",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("model saved to") == 1  # rank 0 alone exports and reports
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # one log, not one per rank
    checkpoint = json.loads((out / "checkpoints" / "step-3" / "progress.json").read_text())
    assert checkpoint["world_size"] == 2
    assert (out / "model" / "model.safetensors").is_file() and (out / "loss.png").is_file()
