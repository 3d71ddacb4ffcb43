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
