"""A LoRA adapter folder that PEFT saved (as dLLM's and Diffutron's LoRA runs do) loads and
generates as its merged model, and diffutron-train export writes that merged model."""

import json

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForMaskedLM

from diffutron_cli.sample import sample
from diffutron_cli.train import train


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A tiny base model folder and a PEFT adapter folder over it, with trained (random) B."""
    from diffutron_data import load_tokenizer
    from diffutron_train import apply_lora, build_model, model_config

    root = tmp_path_factory.mktemp("adapter")
    tokenizer = load_tokenizer("tiny")
    base = build_model(
        model_config("tiny", vocab_size=len(tokenizer), num_hidden_layers=2), seed=0
    ).eval()
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    reloaded = AutoModelForMaskedLM.from_pretrained(root / "base")  # names the base by its path
    peft_model = apply_lora(reloaded, r=4, lora_alpha=8, lora_dropout=0.0)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    peft_model.save_pretrained(root / "adapter")
    merged = peft_model.merge_and_unload().eval()
    merged.save_pretrained(root / "peft-merged")
    tokenizer.save_pretrained(root / "peft-merged")
    return root


def run(app, *args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def generated(model):
    args = ["generate", "--model", model, "--prompt", "Türkiye'nin başkenti neresidir?"]
    return run(sample, *args, "--max-new-tokens", "16", "--steps", "16", "--block-length", "8")


def test_the_adapter_saved_by_peft_is_the_real_format(adapter):
    config = json.loads((adapter / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(
        adapter / "base"
    )
    assert (adapter / "adapter" / "adapter_model.safetensors").is_file()


def test_generate_from_the_adapter_equals_peft_merged_model(adapter):
    from diffutron_sample import load_model

    ours, _ = load_model(str(adapter / "adapter"), device="cpu")
    theirs = AutoModelForMaskedLM.from_pretrained(adapter / "peft-merged")
    expected = dict(theirs.named_parameters())
    for name, value in ours.named_parameters():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    assert generated(adapter / "adapter") == generated(adapter / "peft-merged")
    assert generated(adapter / "adapter") != generated(adapter / "base")  # the adapter matters


def test_export_writes_the_merged_model(adapter, tmp_path):
    out = tmp_path / "merged"
    output = run(train, "export", "--adapter", adapter / "adapter", "--output", out)
    assert f"model saved to {out}" in output
    assert (out / "model.safetensors").is_file() and not list(out.glob("adapter_*"))
    assert generated(out) == generated(adapter / "adapter")
    again = CliRunner().invoke(
        train, ["export", "--adapter", str(adapter / "adapter"), "--output", str(adapter / "base")]
    )
    assert again.exit_code == 1 and "did not make" in again.output  # never over the base


@pytest.mark.parametrize("base", ["absolute", "runs/old/base", "../elsewhere/base"])
def test_a_missing_base_folder_is_named_in_one_line(adapter, tmp_path, base):
    """However the base folder is written, a missing one is named (never the Hub's "Repo id must
    be in the form ..." for text that is no repository id)."""
    moved = tmp_path / "adapter"
    moved.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (moved / name).write_bytes((adapter / "adapter" / name).read_bytes())
    config = json.loads((moved / "adapter_config.json").read_text())
    written = str(tmp_path / "gone") if base == "absolute" else base
    config["base_model_name_or_path"] = written
    (moved / "adapter_config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(sample, ["generate", "--model", str(moved), "--prompt", "Selam"])
    assert result.exit_code == 1 and result.output.count("Error:") == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert f"the base model folder {written}" in line and "is not found" in line, line
    assert "Repo id" not in result.output
    exported = CliRunner().invoke(
        train, ["export", "--adapter", str(moved), "--output", str(tmp_path / "out")]
    )
    assert exported.exit_code == 1 and f"the base model folder {written}" in exported.output
    assert "Repo id" not in exported.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["generate", "infill"])
@pytest.mark.parametrize("written", ["{t}/no/such/model", "./no-such-model", "runs/a/b/model"])
def test_a_missing_model_folder_is_named_in_one_line(tmp_path, monkeypatch, command, written):
    monkeypatch.chdir(tmp_path)
    model = written.format(t=tmp_path)
    argv = ["--prompt", "Selam"] if command == "generate" else ["--text", "Bugün <mask> güzel."]
    result = CliRunner().invoke(sample, [command, "--model", model, *argv])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert f"cannot load model {model!r}: no such folder" in result.output


def test_sft_continues_from_an_adapter_folder(adapter, tmp_path):
    """Every command that takes --model takes an adapter folder: SFT starts from the merge."""
    out = tmp_path / "sft"
    args = ["sft", "--model", adapter / "adapter", "--output-dir", out, "--max-steps", 1]
    run(train, *args, "--synthetic", 5)
    assert (out / "model" / "model.safetensors").is_file()
