"""``diffutron-sample serve``: what the server answers greedily is what ``diffutron-sample
generate`` prints for the same prompt; a bad model is one line before anything binds."""

import json
import urllib.request

from click.testing import CliRunner

from diffutron_cli.sample import sample

PROMPT = "Bugün hava nasıl?"


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_the_servers_greedy_answer_equals_generate(world):
    from diffutron_serve import create_app, serve_in_thread

    model = str(world / "model")
    printed = CliRunner().invoke(sample, ["generate", "--model", model, "--prompt", PROMPT])
    assert printed.exit_code == 0, printed.output
    running = serve_in_thread(create_app(model))
    try:
        reply = post(
            f"{running.url}/v1/chat/completions",
            {"model": "model", "messages": [{"role": "user", "content": PROMPT}], "seed": 0},
        )
    finally:
        running.stop()
    assert reply["choices"][0]["message"]["content"] == printed.output.strip()


def test_a_missing_model_is_one_line(tmp_path):
    result = CliRunner().invoke(sample, ["serve", "--model", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output


def test_a_model_that_fails_to_load_stops_serve_with_one_line(world, tmp_path):
    import shutil

    from diffutron_serve.background import free_port

    broken = tmp_path / "broken"
    shutil.copytree(world / "model", broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    port = str(free_port())
    result = CliRunner().invoke(sample, ["serve", "--model", str(broken), "--port", port])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: the model failed to load: ") and str(broken) in last, last


def test_the_cache_options_become_the_servers_sampler_defaults(world, monkeypatch):
    import diffutron_serve

    seen = {}
    monkeypatch.setattr(diffutron_serve, "serve", lambda model, **options: seen.update(options))
    args = ["serve", "--model", str(world / "model"), "--cache", "dual", "--cache-interval", "4"]
    result = CliRunner().invoke(sample, [*args, "--compile"])
    assert result.exit_code == 0, result.output
    assert seen["sampler"] == {"cache": "dual", "cache_interval": 4} and seen["compile"] is True
    assert "cache" not in seen and "cache_interval" not in seen
    result = CliRunner().invoke(sample, ["serve", "--model", str(world / "model"), "--cache", "no"])
    assert result.exit_code == 2 and "'no' is not one of" in result.output


def test_one_infill_canvas_for_the_cli_the_server_and_the_library(world):
    """The same text gives the same canvas and the same greedy fill through
    ``diffutron-sample infill``, ``/v1/completions`` with ``suffix`` and the library."""
    from diffutron_sample import SamplerConfig, infill_text, load_model
    from diffutron_sample.text import infill_ids, trim
    from diffutron_serve import create_app, serve_in_thread

    model_dir = str(world / "model")
    prefix, suffix, gap = "Bugün hava", " çok güzel.", 4
    model, tokenizer = load_model(model_dir, device="cpu")
    text = prefix + tokenizer.mask_token * gap + suffix
    settings = {"steps": 4, "block_length": 4, "max_new_tokens": 4, "temperature": 0.0}
    filled, canvas = infill_text(model, tokenizer, text, SamplerConfig(**settings))

    options = ["--steps", "4", "--block-length", "4", "--max-new-tokens", "4"]
    printed = CliRunner().invoke(
        sample, ["infill", "--model", model_dir, "--text", text, *options, "--temperature", "0"]
    )
    assert printed.exit_code == 0, printed.output
    assert printed.output.strip() == filled

    running = serve_in_thread(create_app(model_dir))
    try:
        job = {"model": "model", "prompt": prefix, "suffix": suffix, "max_tokens": gap}
        extra = {k: v for k, v in settings.items() if k != "max_new_tokens"}
        reply = post(f"{running.url}/v1/completions", {**job, **extra})
        worker_canvas = running.app.state.server.worker
    finally:
        running.stop()
    from diffutron_serve.requests import completion_job

    served = completion_job({**job, **extra}, tokenizer, SamplerConfig(**settings), "model")
    ids = infill_ids(tokenizer, text)
    assert [*served.ids, *[tokenizer.mask_token_id] * gap, *served.suffix_ids] == ids
    start = ids.index(tokenizer.mask_token_id)
    assert canvas[:start] == ids[:start] and canvas[start + gap :] == ids[start + gap :]
    assert reply["choices"][0]["text"] == trim(tokenizer, canvas[start : start + gap])
    assert worker_canvas.failure is None
