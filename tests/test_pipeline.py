"""The whole pipeline on the tiny preset, as a user runs it: CPT, SFT from the CPT model, chat."""

import json

import pytest
from click.testing import CliRunner

from diffutron_cli.sample import sample
from diffutron_cli.train import train


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def invoke(app, *args, **kwargs):
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)
    assert result.exit_code == 0, result.output
    return result


def test_cpt_then_sft_then_generate_and_chat(tmp_path):
    invoke(train, "cpt", "--output-dir", tmp_path / "cpt", "--max-steps", 3)
    invoke(
        train,
        "sft",
        "--model",
        tmp_path / "cpt" / "model",
        "--output-dir",
        tmp_path / "sft",
        "--synthetic",
        10,
        "--max-steps",
        3,
    )
    model = tmp_path / "sft" / "model"
    sampler = json.loads((model / "sampler_config.json").read_text(encoding="utf-8"))
    assert sampler["max_new_tokens"] == 64 and sampler["repetition_penalty"] == 1.2
    from diffutron_sample import SamplerConfig, load_model

    assert SamplerConfig.from_pretrained(model).block_length == 32
    _, tokenizer = load_model(str(model), device="cpu")
    assert "[Question]" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False
    )
    generated = invoke(
        sample, "generate", "--model", model, "--prompt", "Merhaba!", "--threshold", "0.9"
    )
    assert len(generated.stdout.splitlines()) == 1
    chat = invoke(sample, "chat", "--model", model, input="Selam\n/quit\n")
    assert chat.stdout.count("model> ") == 1


def test_paper_sft_needs_a_model(tmp_path):
    result = CliRunner().invoke(
        train, ["sft", "--preset", "paper", "--output-dir", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "starts from a model: pass --model" in result.output
