"""Bad inputs to prepare, cpt and sft: one line each, nothing around them touched (a user's
folder is never replaced, a run is never silently reused for other data or settings)."""

import pytest
from click.testing import CliRunner

from diffutron_cli.train import train

PREPARE = [
    (["cpt", "--source", "{w}/missing.txt"], 1, "file not found: {w}/missing.txt"),
    (["cpt", "--source", "{w}/empty.txt"], 1, "empty.txt: no usable text (it is empty)"),
    (["cpt", "--source", "{w}/blank.txt"], 1, "blank.txt: no usable text (3 record(s) skipped"),
    (
        ["cpt", "--source", "{w}/latin1.txt"],
        1,
        "latin1.txt:1: invalid utf8 (byte 0xfc at column 2)",
    ),
    (
        ["cpt", "--source", "{w}/huge-line.txt", "--max-length", "64"],
        1,
        "no usable text (1 record(s) skipped, the first: {w}/huge-line.txt:1: too long (a line "
        "over 28672 bytes)",
    ),
    (
        ["cpt", "--source", "{w}/corpus.txt", "--source", "{w}/./corpus.txt"],
        1,
        "source {w}/./corpus.txt is given twice (as {w}/corpus.txt); give each source once",
    ),
    (["cpt", "--source", "{w}/mine"], 1, "mine is a folder; give the data files themselves"),
    (["cpt", "--source", "{w}/table.csv"], 1, "unsupported file type '.csv'"),
    (["cpt", "--source", "{w}/corpus.txt?mode=bogus"], 1, "mode must be 'line' or 'paragraph'"),
    (["cpt", "--source", "{w}/corpus.txt?limit=0"], 1, "limit must be a positive whole number"),
    (["cpt", "--source", "{w}/corpus.txt?colum=x"], 1, "unknown option(s) colum"),
    (
        ["cpt", "--source", "{w}/nocolumn.jsonl"],
        1,
        "no row has the field 'text'; fields found: body",
    ),
    (["cpt", "--source", "{w}/surrogate.jsonl"], 1, "'text' is not text (a lone surrogate U+D800"),
    (["cpt", "--output-dir", "{w}/mine"], 1, "exists and is not empty; pass --overwrite"),
    (["cpt", "--output-dir", "{w}/mine", "--overwrite"], 1, "holds files Diffutron did not make"),
    (
        ["cpt", "--output-dir", "{w}/a-run", "--overwrite"],
        1,
        "is a Diffutron run folder, not a cpt-data",
    ),
    (["cpt", "--output-dir", "{w}/a-file"], 2, "is a file"),
    (["cpt", "--max-length", "1"], 2, "is not in the range x>=2"),
    (["cpt", "--source", "{w}/corpus.txt?column=text"], 1, "column does not apply to a text file"),
    (["cpt", "--source", "{w}/corpus.txt?mode=line&mode=paragraph"], 1, "mode given twice"),
    (["cpt", "--source", "{w}/numbers.jsonl?mode=paragraph"], 1, "mode does not apply to a table"),
    (["cpt", "--source", "/dev/null"], 1, "/dev/null is not a regular file"),
    (["cpt", "--num-proc", "0"], 2, "is not in the range x>=1"),
    (["cpt", "--seed", "-5"], 2, "is not in the range"),
    (["cpt", "--tokenizer", "{w}/missing-tokenizer"], 1, "cannot load tokenizer"),
    (["sft", "--source", "{w}/sft-unknown.jsonl"], 1, "no known instruction schema"),
    (
        ["sft", "--source", "{w}/sft-bad.jsonl"],
        1,
        "no usable instruction rows (2 record(s) skipped",
    ),
    (["sft", "--source", "{w}/sft-latin1.jsonl"], 1, "no usable instruction rows"),
    (
        ["sft", "--source", "{w}/sft-bad.jsonl", "--source", "{w}/sft-bad.jsonl"],
        1,
        "source {w}/sft-bad.jsonl is given twice; give each source once",
    ),
    (["sft", "--synthetic-task", "poetry"], 1, "unknown synthetic task(s) poetry"),
    (["sft", "--stage", "3"], 2, "is not in the range 1<=x<=2"),
    (["sft", "--schema", "chatml"], 2, "'chatml' is not one of"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), PREPARE, ids=[str(i) for i in range(len(PREPARE))]
)
def test_prepare(bad_input, world, args, code, expected):
    argv = ["prepare", *args]
    if "--output-dir" not in args:  # where it would go: it must not appear
        argv += ["--output-dir", "{w}/prepared"]
    bad_input(train, argv, code, expected)
    assert not (world / "prepared").exists()


CPT = [
    (["--output-dir", "{w}/mine"], 1, "holds files Diffutron did not make"),
    (["--output-dir", "{w}/a-file"], 1, "is a file, not a folder"),
    (["--output-dir", "{w}/nowhere", "--resume"], 1, "holds no run to resume"),
    (["--lr", "nan"], 2, "'nan' is not a finite number"),
    (["--lr", "0"], 2, "is not in the range x>0"),
    (["--epochs", "inf"], 2, "'inf' is not a finite number"),
    (["--warmup-ratio", "2"], 2, "is not in the range 0<=x<=1"),
    (["--mlm-probability", "1"], 2, "is not in the range 0<x<1"),
    (["--max-grad-norm", "-inf"], 2, "is not a finite number"),
    (["--batch-size", "0"], 2, "is not in the range x>=1"),
    (["--seed", "99999999999"], 2, "is not in the range"),
    (["--source", "{w}/missing.txt"], 1, "file not found"),
    (["--source", "{w}/empty.txt"], 1, "no usable text (it is empty)"),
    (["--source", "{w}/latin1.txt"], 1, "no usable text (2 record(s) skipped"),
    (
        ["--data", "{w}/no-manifest"],
        1,
        "is a folder without manifest.json; give a folder made by 'prepare cpt'",
    ),
    (["--data", "{w}/cpt-data-fake"], 1, "its manifest says 'sft'"),
    (["--model", "{w}/missing-model"], 1, "cannot load tokenizer"),
    (["--model", "{m}", "--max-length", "4096"], 1, "--max-length 4096 exceeds the model's 128"),
    (["--max-length", "4096"], 1, "--max-length 4096 exceeds the model's 512 positions"),
    (["--config", "{w}/config-train-unknown.yaml"], 2, "unknown option(s) lrr for 'cpt'"),
    (["--config", "{w}/config-nan.yaml"], 2, "nan is not a finite number"),
    (["--config", "{w}/config-broken.yaml"], 2, "is not valid YAML"),
    (["--config", "{w}/config-huge.yaml"], 2, "is not a finite number"),
    (["--config", "no-such-config"], 2, "no config file or bundled config 'no-such-config'"),
    (["@group", "{w}/config-group-typo.yaml"], 2, "'cptt' is not a command of 'diffutron-train'"),
    (["@group", "{w}/config-group-option.yaml"], 2, "unknown option(s) lrr for 'cpt'"),
    (["@group", "{w}/config-group-flat.yaml"], 2, "'lr' is not a command"),
]


def _cpt_argv(args):
    if args[0] == "@group":  # the app's --config, mapping command names to options
        return ["--config", args[1], "cpt", "--output-dir", "{w}/new-run"]
    argv = ["cpt", *args]
    if "--output-dir" not in args:
        argv += ["--output-dir", "{w}/new-run"]
    return argv


@pytest.mark.parametrize(("args", "code", "expected"), CPT, ids=[str(i) for i in range(len(CPT))])
def test_cpt(bad_input, world, args, code, expected):
    bad_input(train, _cpt_argv(args), code, expected)
    assert not (world / "new-run").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-step CPT run on a small source file of its own."""
    root = tmp_path_factory.mktemp("finished")
    source = root / "text.txt"
    source.write_text("Bugün hava çok güzel.\nKedi süt içer.\nYarın okula gideceğim.\n", "utf-8")
    run = root / "run"
    argv = ["cpt", "--output-dir", str(run), "--source", str(source), "--max-steps", "2"]
    result = CliRunner().invoke(train, argv)
    assert result.exit_code == 0, result.output
    return root


RERUNS = [
    (["--lr", "0.01"], "holds a different run (loop.learning_rate differ)"),
    (["--max-steps", "4"], "holds this run with another length (loop.max_steps); pass --resume"),
    (["--source", "{w}/corpus.txt"], "holds a different run (sources differ)"),
    (["@edit"], "was trained on other data"),
    (["--max-steps", "1", "--resume"], "is at step 2, past this run's 1 steps"),
]


@pytest.mark.parametrize(
    ("args", "expected"), RERUNS, ids=["settings", "length", "sources", "data", "shorter"]
)
def test_cpt_reruns_never_reuse_a_run_for_other_data_or_settings(
    bad_input, finished_run, args, expected
):
    source = finished_run / "text.txt"
    base = ["cpt", "--output-dir", str(finished_run / "run"), "--max-steps", "2"]
    original = source.read_bytes()
    if args == ["@edit"]:  # same path, other content
        source.write_bytes(original + "Yeni bir cümle.\n".encode())
        argv = [*base, "--source", str(source)]
    elif "--source" in args:
        argv = [*base, *args]
    else:
        argv = [*base, "--source", str(source), *args]
    try:
        bad_input(train, argv, 1, expected, roots=[finished_run])
    finally:
        source.write_bytes(original)


def test_a_finished_run_started_again_says_so_and_trains_nothing(finished_run, caplog):
    run = finished_run / "run"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    argv = ["cpt", "--output-dir", str(run), "--source", str(finished_run / "text.txt")]
    result = CliRunner().invoke(train, [*argv, "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert f"model saved to {run / 'model'}" in result.output
    assert f"{run} is finished: its model is {run / 'model'}" in caplog.text
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert after == before  # nothing retrained, nothing rewritten


SFT = [
    (["--model", "{w}/missing-model"], 1, "cannot load tokenizer"),
    (["--preset", "paper"], 1, "starts from a model: pass --model"),
    (["--data", "{w}/sft-data-fake"], 1, "its manifest says 'cpt'"),
    (
        ["--data", "{w}/no-manifest"],
        1,
        "is a folder without manifest.json; give a folder made by 'prepare sft'",
    ),
    (["--synthetic-task", "poetry"], 1, "unknown synthetic task(s) poetry"),
    (["--source", "{w}/sft-unknown.jsonl"], 1, "no known instruction schema"),
    (["--source", "{w}/sft-latin1.jsonl"], 1, "no usable instruction rows"),
    (["--lr", "nan"], 2, "'nan' is not a finite number"),
    (["--output-dir", "{w}/mine"], 1, "holds files Diffutron did not make"),
    (["--output-dir", "{w}/a-run", "--resume"], 1, "--resume: {w}/a-run holds a different run"),
    (["--max-length", "1"], 2, "is not in the range x>=2"),
    (["--model", "{m}", "--max-length", "4096"], 1, "--max-length 4096 exceeds the model's 128"),
    (["--stage", "0"], 2, "is not in the range 1<=x<=2"),
]


@pytest.mark.parametrize(("args", "code", "expected"), SFT, ids=[str(i) for i in range(len(SFT))])
def test_sft(bad_input, world, args, code, expected):
    argv = ["sft", *args]
    if "--output-dir" not in args:
        argv += ["--output-dir", "{w}/new-run"]
    bad_input(train, argv, code, expected)
    assert not (world / "new-run").exists()


def test_training_never_replaces_a_model_folder_it_did_not_make(tmp_path):
    """The example of the issue: an --output-dir that is not a run folder lost its model/."""
    out = tmp_path / "mine"
    (out / "model").mkdir(parents=True)
    (out / "model" / "weights.bin").write_bytes(b"mine")
    result = CliRunner().invoke(train, ["cpt", "--output-dir", str(out), "--max-steps", "1"])
    assert result.exit_code == 1 and "holds files Diffutron did not make" in result.output
    assert (out / "model" / "weights.bin").read_bytes() == b"mine"
    assert sorted(p.name for p in out.rglob("*")) == ["model", "weights.bin"]


POLICY = [
    (["--model", "{w}/missing-model"], 2, "does not exist"),
    (["--model", "{w}/notes.txt"], 2, "is a file"),
    (["--model", "{m}", "--precision", "nan"], 2, "'nan' is not a finite number"),
    (["--model", "{m}", "--precision", "1"], 2, "is not in the range 0.5<=x<1"),
    (["--model", "{m}", "--prompts", "{w}/missing.txt"], 1, "file {w}/missing.txt does not"),
    (["--model", "{m}", "--prompts", "{w}/prompts-empty.jsonl"], 1, "prompts-empty.jsonl"),
    (["--model", "{m}", "--prompts", "{w}/prompts-bad.jsonl"], 1, "no prompt to generate for (3"),
    (["--model", "{m}", "--prompts", "{w}/mine"], 2, "is a directory"),
    (["--model", "{m}", "--device", "tpu"], 1, "tpu"),
    (["--model", "{m}", "--prompts", "{w}/prompts.jsonl"], 1, "72 logged positions are too few"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), POLICY, ids=[str(i) for i in range(len(POLICY))]
)
def test_policy(bad_input, world, args, code, expected):
    bad_input(train, ["policy", *args], code, expected)
