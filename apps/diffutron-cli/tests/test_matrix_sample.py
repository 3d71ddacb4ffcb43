"""Bad inputs to generate, chat and infill: one line each, nothing around them touched."""

import json

import pytest

from diffutron_cli.sample import sample

GENERATE = [
    # the prompts
    (["--prompts-file", "{w}/missing.jsonl"], 2, "does not exist"),
    (["--prompts-file", "{w}/mine"], 2, "is a directory"),
    (["--prompts-file", "{w}/prompts-empty.jsonl"], 1, "no prompt to generate for (it is empty)"),
    (
        ["--prompts-file", "{w}/prompts-empty.jsonl", "--output", "{w}/out.jsonl"],
        1,
        "no prompt to generate for",
    ),
    (
        ["--prompts-file", "{w}/prompts-bad.jsonl"],
        1,
        "3 line(s) skipped, the first: 1: no 'prompt'",
    ),
    (["--prompts-file", "{w}/prompts-latin1.jsonl"], 1, "1: not valid UTF-8 (byte 0xfc"),
    (["--prompts-file", "{w}/prompts-messages.jsonl"], 1, "the last message is not the user's"),
    (["--prompt", ""], 1, "--prompt number 1 is empty"),
    (["--prompt", "Merhaba \udcff"], 1, "--prompt number 1 is not valid UTF-8 (byte 0xff"),
    (["--prompt", "kelime " * 200], 1, "positions but the model has 128"),
    (["--prompt", "Selam", "--prompts-file", "{w}/prompts.jsonl"], 2, "not both"),
    # the output
    (
        ["--prompts-file", "{w}/prompts.jsonl", "--output", "{w}/prompts.jsonl"],
        1,
        "is also an input",
    ),
    (["--prompt", "Selam", "--output", "{w}/mine"], 2, "is a directory"),
    (["--prompt", "Selam", "--output", "{w}/notes.txt/out.jsonl"], 1, "is a file, not a folder"),
    (["--prompt", "Selam", "--output", "{w}/model/model.safetensors"], 1, "inside an input folder"),
    (["--prompt", "Selam", "--output", "{w}/model/new.jsonl"], 1, "inside an input folder"),
    (
        [
            "--config",
            "{w}/config-unknown.yaml",
            "--prompt",
            "S",
            "--output",
            "{w}/config-unknown.yaml",
        ],
        2,
        "'temprature' is not a command",
    ),
    # the model (the existing --output stays as it was)
    (
        ["--prompt", "Selam", "--model", "{w}/missing", "--output", "{w}/out.jsonl"],
        1,
        "cannot load",
    ),
    (["--prompt", "Selam", "--model", "{w}/notes.txt"], 1, "cannot load"),
    (["--prompt", "Selam", "--model", "{w}/model-bad-sampler"], 1, "is not valid JSON"),
    # the settings
    (["--prompt", "Selam", "--temperature", "nan"], 2, "'nan' is not a finite number"),
    (["--prompt", "Selam", "--temperature", "inf"], 2, "'inf' is not a finite number"),
    (["--prompt", "Selam", "--threshold", "nan"], 2, "'nan' is not a finite number"),
    (["--prompt", "Selam", "--cfg-scale", "-inf"], 2, "'-inf' is not a finite number"),
    (
        ["--prompt", "Selam", "--repetition-penalty", "0"],
        1,
        "repetition_penalty must be a number in",
    ),
    (["--prompt", "Selam", "--repetition-penalty", "1e-40"], 1, "repetition_penalty must be"),
    (["--prompt", "Selam", "--cfg-scale", "1e39"], 1, "cfg_scale must be a number in [0, 1000"),
    (["--prompt", "Selam", "--temperature", "5e-324"], 1, "temperature must be 0 (greedy) or at"),
    (["--prompt", "Selam", "--temperature", "-1"], 1, "temperature must be a number in [0, 1000]"),
    (["--prompt", "Selam", "--threshold", "1.5"], 1, "threshold must be a number in (0, 1]"),
    (["--prompt", "Selam", "--block-length", "5"], 1, "block_length 5 does not divide"),
    (
        ["--prompt", "Selam", "--steps", "0"],
        1,
        "steps must be a whole number in [1, 1000000], got 0",
    ),
    (
        ["--prompt", "Selam", "--max-new-tokens", "-8"],
        1,
        "max_new_tokens must be a whole number in",
    ),
    (["--prompt", "Selam", "--seed", "-1"], 2, "is not in the range"),
    (["--prompt", "Selam", "--batch-size", "0"], 2, "is not in the range"),
    # the device
    (["--prompt", "Selam", "--device", "tpu9"], 1, "unknown device 'tpu9'; torch sees: cpu"),
    (["--prompt", "Selam", "--device", "cuda:7"], 1, "device 'cuda:7' is not available"),
    # config files (the app's --config maps command names to their options)
    (
        ["--config", "{w}/config-sample-typo.yaml", "--prompt", "Selam"],
        2,
        "unknown option(s) temprature",
    ),
    (
        ["--config", "{w}/config-unknown.yaml", "--prompt", "Selam"],
        2,
        "'temprature' is not a command",
    ),
    (["--config", "{w}/config-latin1.yaml", "--prompt", "Selam"], 2, "not valid UTF-8"),
    (["--config", "{w}/config-broken.yaml", "--prompt", "Selam"], 2, "is not valid YAML"),
    (
        ["--config", "{w}/config-list.yaml", "--prompt", "S"],
        2,
        "must be a single value, not a list",
    ),
    (
        ["--config", "{w}/config-float-steps.yaml", "--prompt", "S"],
        2,
        "must be a whole number, got 8.7",
    ),
    (
        ["--config", "{w}/config-bool-steps.yaml", "--prompt", "S"],
        2,
        "must be a whole number, got True",
    ),
    (
        ["--config", "{w}/config-text-flag.yaml", "--prompt", "S"],
        2,
        "must be true or false, got 'yes'",
    ),
    (["--prompt", "Selam", "--device", ""], 1, "unknown device ''"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), GENERATE, ids=[str(i) for i in range(len(GENERATE))]
)
def test_generate(bad_input, args, code, expected):
    argv = ["generate", *args]
    if "--model" not in args:
        argv += ["--model", "{m}"]
    if "--config" in args:  # the app's option, before the command
        at = argv.index("--config")
        argv = [*argv[at : at + 2], *argv[:at], *argv[at + 2 :]]
    bad_input(sample, argv, code, expected)


CHAT = [
    (["--model", "{m}", "--system", "Sistem \udcfc"], None, 1, "--system is not valid UTF-8"),
    (["--model", "{w}/missing"], None, 1, "cannot load"),
    (["--model", "{m}", "--temperature", "nan"], None, 2, "'nan' is not a finite number"),
    (["--model", "{m}", "--device", "npu"], None, 1, "unknown device 'npu'"),
    (["--model", "{w}/model-bad-sampler"], None, 1, "is not valid JSON"),
    (["--model", "{m}", "--max-new-tokens", "12"], None, 1, "block_length 8 does not divide"),
    (["--model", "{m}"], "/set temperature=nan\n/quit\n", 0, "temperature must be a finite number"),
    (["--model", "{m}"], b"Merhaba \xff\n/quit\n", 0, "the message is not valid UTF-8 (byte 0xff)"),
    (["--model", "{m}"], "/set steps=many\n/quit\n", 0, "steps cannot be 'many'"),
    (["--model", "{m}"], "/set top_k=3\n/quit\n", 0, "unknown setting 'top_k'"),
    (["--model", "{m}"], "/set temperature\n/quit\n", 0, "write /set key=value"),
    (["--model", "{m}"], "/set block_length=5\n/quit\n", 0, "block_length 5 does not divide"),
    (["--model", "{m}"], "/set threshold=2\n/quit\n", 0, "threshold must be a number in (0, 1]"),
    (["--model", "{m}"], "/set early_stop=perhaps\n/quit\n", 0, "early_stop cannot be 'perhaps'"),
]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "expected"), CHAT, ids=[str(i) for i in range(len(CHAT))]
)
def test_chat(bad_input, args, stdin, code, expected):
    bad_input(sample, ["chat", *args], code, expected, stdin=stdin)


INFILL = [
    (["--text", "Bugün hava çok güzel."], 2, "holds no <mask>"),
    (["--text", "Bug\udcfcn <mask> güzel."], 1, "--text is not valid UTF-8 (byte 0xfc"),
    (["--text", "Bugün <mask> güzel.", "--model", "{w}/missing"], 1, "cannot load"),
    (["--text", "Bugün <mask> güzel.", "--device", "gpu"], 1, "unknown device 'gpu'"),
    (["--text", "Bugün <mask> güzel.", "--temperature", "nan"], 2, "not a finite number"),
    (
        ["--text", "Bugün <mask> güzel.", "--steps", "0"],
        1,
        "steps must be a whole number in [1, 1000000]",
    ),
    (["--text", "kelime " * 200 + "<mask>"], 1, "positions but the model has 128"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), INFILL, ids=[str(i) for i in range(len(INFILL))]
)
def test_infill(bad_input, args, code, expected):
    argv = ["infill", *args]
    if "--model" not in args:
        argv += ["--model", "{m}"]
    bad_input(sample, argv, code, expected)


def test_generate_writes_its_output_only_when_done_and_makes_missing_folders(world, tmp_path):
    from click.testing import CliRunner

    out = tmp_path / "new" / "deeper" / "out.jsonl"
    argv = ["generate", "--model", str(world / "model"), "--prompts-file"]
    result = CliRunner().invoke(sample, [*argv, str(world / "prompts.jsonl"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["prompt"] for line in out.read_text("utf-8").splitlines()] == [
        "Merhaba"
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.jsonl"]  # no temporary left


def _generate_to(world, output) -> object:
    from click.testing import CliRunner

    argv = ["generate", "--model", str(world / "model"), "--prompt", "Merhaba"]
    return CliRunner().invoke(sample, [*argv, "--output", str(output)])


def test_output_onto_dev_null_writes_into_the_device_and_leaves_it_a_device(world):
    import stat

    result = _generate_to(world, "/dev/null")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(__import__("os").stat("/dev/null").st_mode)


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="no /dev/full here")
def test_output_onto_a_full_device_is_one_line_and_the_device_stays(world):
    import os
    import stat

    result = _generate_to(world, "/dev/full")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], result.output
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_output_onto_a_fifo_writes_into_it_and_it_stays_a_fifo(world, tmp_path):
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = _generate_to(world, fifo)
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(got[0].decode("utf-8").splitlines()[0])["prompt"] == "Merhaba"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_output_through_a_symlink_lands_in_its_target_and_keeps_the_link(world, tmp_path):
    target = tmp_path / "real" / "out.jsonl"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = _generate_to(world, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert json.loads(target.read_text("utf-8").splitlines()[0])["prompt"] == "Merhaba"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl", "real"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.jsonl"]


def test_output_through_a_dangling_symlink_creates_its_target(world, tmp_path):
    target = tmp_path / "made.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = _generate_to(world, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.is_file()
