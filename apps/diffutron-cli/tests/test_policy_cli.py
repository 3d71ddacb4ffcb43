"""``diffutron-train policy`` end to end on a tiny model: it learns from the embedded
instructions, writes only its own two files into the model folder, and ``--policy learned``
then uses them; a foreign policy file, or one made for another tokenizer, is one line."""

import json

from click.testing import CliRunner

from diffutron_cli.sample import sample
from diffutron_cli.train import train


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_policy_learns_writes_its_own_files_and_generate_uses_them(fresh_model):
    before = files(fresh_model)
    result = CliRunner().invoke(train, ["policy", "--model", str(fresh_model)])
    assert result.exit_code == 0, result.output
    assert "commit policy saved to" in result.output and "use --policy learned" in result.output
    after = files(fresh_model)
    assert {k: after[k] for k in before} == before  # the model itself untouched
    assert sorted(set(after) - set(before)) == ["commit_policy.json", "commit_policy.safetensors"]
    card = json.loads(after["commit_policy.json"])
    assert card["prompts"] > 100  # the embedded instructions' user turns
    assert card["precision"] >= 0.998 or card["cutoff"] > 0.99  # the target, or the top cut-off
    args = ["generate", "--model", str(fresh_model), "--prompt", "merhaba", "--policy", "learned"]
    generated = CliRunner().invoke(sample, args)
    assert generated.exit_code == 0, generated.output
    assert generated.output.strip()


def test_a_foreign_policy_file_is_refused_before_any_work(fresh_model):
    (fresh_model / "commit_policy.json").write_text('{"mine": 1}')
    result = CliRunner().invoke(train, ["policy", "--model", str(fresh_model)])
    assert result.exit_code == 1
    assert result.output.count("Error:") == 1 and "Traceback" not in result.output
    assert "is not a commit policy Diffutron wrote; move it away first" in result.output
    assert (fresh_model / "commit_policy.json").read_text() == '{"mine": 1}'
    assert not (fresh_model / "commit_policy.safetensors").exists()


def test_learned_without_a_policy_or_with_another_tokenizers_is_one_line(fresh_model, tmp_path):
    args = ["generate", "--model", str(fresh_model), "--prompt", "merhaba", "--policy", "learned"]
    result = CliRunner().invoke(sample, args)
    assert result.exit_code == 1 and "has no learned commit policy" in result.output
    assert "diffutron-train policy --model DIR" in result.output
    card = {"kind": "diffutron-commit-policy"}  # ours in kind, not in tokenizer or digest
    (fresh_model / "commit_policy.json").write_text(json.dumps(card))
    (fresh_model / "commit_policy.safetensors").write_bytes(b"")
    result = CliRunner().invoke(sample, args)
    assert result.exit_code == 1 and result.output.count("Error:") == 1
    assert "commit_policy.json was written for other features" in result.output


def test_a_rule_flag_replaces_the_models_own_rule(fresh_model):
    config = fresh_model / "sampler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "threshold": 0.9}))
    args = ["generate", "--model", str(fresh_model), "--prompt", "merhaba"]
    for flag in (["--entropy-bound", "0.1"], ["--kl-threshold", "0.5"]):
        result = CliRunner().invoke(sample, [*args, *flag])
        assert result.exit_code == 0, result.output
