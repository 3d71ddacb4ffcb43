import gc
import json

import pytest
from click.testing import CliRunner

from diffutron_cli.sample import sample


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random ModernBERT with the embedded tokenizer and a sampler_config.json."""
    import torch
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from diffutron_data import load_tokenizer
    from diffutron_sample import SamplerConfig

    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        cls_token_id=2,
        sep_token_id=1,
    )
    path = tmp_path_factory.mktemp("model")
    ModernBertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    SamplerConfig(steps=8, max_new_tokens=16, block_length=8).save_pretrained(path)
    return str(path)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")


def run(*args, **kwargs):
    return CliRunner().invoke(sample, list(args), catch_exceptions=False, **kwargs)


def test_generate_one_prompt_prints_one_reply(model_dir):
    gc.unfreeze()
    result = run("generate", "--model", model_dir, "--prompt", "Merhaba, nasılsın?")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    assert gc.get_freeze_count() > 0  # the loaded model is out of the collector's sight


def test_generate_prompts_file_writes_jsonl_and_reports_bad_rows(model_dir, tmp_path):
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(
        '{"prompt": "Bir renk söyle."}\n{"oops": 1}\nnot json\n'
        '{"messages": [{"role": "user", "content": "Selam"}], "id": 7}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = run(
        "generate",
        "--model",
        model_dir,
        "--prompts-file",
        str(prompts),
        "--output",
        str(out),
        "--threshold",
        "0.5",
        "--batch-size",
        "2",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("id") for r in rows] == [None, 7] and all("output" in r for r in rows)
    assert f"{prompts}:2: no 'prompt' or 'messages' field; skipped" in result.stderr
    assert f"{prompts}:3: not valid JSON; skipped" in result.stderr
    assert "skipped 2 malformed row(s)" in result.stderr


def test_show_steps_and_paper_preset(model_dir):
    result = run(
        "generate",
        "--model",
        model_dir,
        "--prompt",
        "Selam",
        "--show-steps",
        "--preset",
        "paper",
        "--max-new-tokens",
        "32",
    )
    assert result.exit_code == 0, result.output


def test_infill_keeps_the_given_words(model_dir):
    result = run("infill", "--model", model_dir, "--text", "Bugün hava <mask><mask> güzel.")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Bugün hava") and result.stdout.rstrip().endswith("güzel.")
    assert "<mask>" not in result.stdout


def test_chat_repl(model_dir):
    result = run(
        "chat",
        "--model",
        model_dir,
        input="Merhaba\n/set temperature=0.5\n/set top_k=3\n/reset\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("model> ") == 1
    assert "(temperature = 0.5)" in result.stdout and "(history cleared)" in result.stdout
    assert "unknown setting 'top_k'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--block-length", "5"], "Error: block_length 5 does not divide max_new_tokens 16", 1),
        (["--max-new-tokens", "120", "--steps", "120"], "positions but the model has 128", 1),
        (["--temperature", "-1"], "temperature must be a number in [0, 1000]", 1),
        (["--steps", "1"], "steps 1 is fewer than the 2 blocks", 1),
    ],
)
def test_bad_settings_are_one_line_errors(model_dir, args, message, code):
    result = run("generate", "--model", model_dir, "--prompt", "Selam " * 10, *args)
    assert result.exit_code == code and message in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_missing_model_and_conflicting_inputs(tmp_path):
    result = run("generate", "--model", str(tmp_path / "none"), "--prompt", "x")
    assert (
        result.exit_code == 1 and "cannot load" in result.output and result.output.count("\n") == 1
    )
    result = run("generate", "--model", str(tmp_path), "--prompt", "x", "--prompts-file", __file__)
    assert result.exit_code == 2 and "not both" in result.output


@pytest.mark.parametrize(
    ("args", "cached"),
    [
        ([], False),
        (["--cache", "dual"], True),
        (["--cache", "prefix", "--cache-interval", "2", "--compile"], True),
    ],
)
def test_cache_option_reaches_the_sampler(model_dir, monkeypatch, args, cached):
    import diffutron_sample.masked_lm as model_module

    calls = []
    real = model_module.cached_states

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(model_module, "cached_states", counting)
    result = run("generate", "--model", model_dir, "--prompt", "Selam", *args)
    assert result.exit_code == 0, result.output
    assert bool(calls) == cached
    result = run("chat", "--model", model_dir, input="/set cache=dual\n/set cache=off\n/quit\n")
    assert result.exit_code == 0 and "(cache = dual)" in result.stdout, result.output
    assert "(cache = None)" in result.stdout


def test_a_bad_cache_option_is_one_line(model_dir):
    result = run("generate", "--model", model_dir, "--prompt", "x", "--cache", "full")
    assert result.exit_code == 2 and "'full' is not one of" in result.output
    result = run("generate", "--model", model_dir, "--prompt", "x", "--cache-interval", "0")
    assert result.exit_code == 2 and "--cache-interval" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"cache": "dual"}, {"cache": "dual", "cache_refresh": "adaptive"}),
        ({"cache": "dual", "cache_interval": 2}, {"cache": "dual", "cache_interval": 2}),
        ({"cache": "prefix", "cache_drift": 0.3}, {"cache": "prefix", "cache_drift": 0.3}),
        (
            {"cache": "dual", "cache_refresh": "fixed"},
            {"cache": "dual", "cache_refresh": "fixed"},
        ),
        ({"cache": "none"}, {"cache": None}),
        (
            {"cache": "dual", "cache_delayed": True},
            {"cache": "dual", "cache_delayed": True, "cache_refresh": "adaptive"},
        ),
    ],
)
def test_cache_alone_refreshes_adaptively_unless_a_refresh_is_asked_for(args, expected):
    from diffutron_cli.sampler_options import cache_settings

    assert cache_settings(args) == expected


def test_a_bad_refresh_option_is_one_line(model_dir):
    args = ("generate", "--model", model_dir, "--prompt", "x", "--cache", "dual")
    result = run(*args, "--cache-drift", "-1")
    assert result.exit_code == 2 and "--cache-drift" in result.output
    result = run(*args, "--cache-refresh", "fixed", "--cache-drift", "0.2")
    assert result.exit_code == 1 and result.output.count("Error:") == 1
    assert "cache_drift applies to cache_refresh 'adaptive'" in result.output
