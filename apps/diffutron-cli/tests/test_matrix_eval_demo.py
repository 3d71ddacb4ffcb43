"""Bad inputs to perplexity, bench and demo: one line each, nothing around them touched."""

import pytest

from diffutron_cli.evaluate import evaluate
from diffutron_cli.main import diffutron

PERPLEXITY = [
    (["--data", "{w}/missing.txt"], 1, "data file {w}/missing.txt does not exist"),
    (["--data", "{w}/latin1.txt"], 1, "latin1.txt:1: not valid UTF-8 (byte 0xfc at column 2)"),
    (["--data", "{w}/latin1.csv", "--column", "text"], 1, "latin1.csv:2: not valid UTF-8"),
    (["--data", "{w}/empty.txt"], 1, "no text to evaluate"),
    (["--data", "{w}/blank.txt"], 1, "no text to evaluate"),
    (["--data", "{w}/mine"], 1, "is a folder; give the data files themselves"),
    (["--data", "{w}/nocolumn.jsonl"], 1, "no column 'text' (found: body)"),
    (["--data", "{w}/numbers.jsonl"], 1, "numbers.jsonl:1: 'text' is int, not text"),
    (["--data", "{w}/surrogate.jsonl"], 1, "text 1 is not text (a lone surrogate U+D800"),
    (["--data", "{w}/table.csv", "--column", "text"], 1, "no column 'text' (found: a, b)"),
    (["--data", "{w}/corpus.txt", "--output", "{w}/corpus.txt"], 1, "is also an input"),
    (["--data", "{w}/corpus.txt", "--output", "{w}/model/tokenizer.json"], 1, "inside an input"),
    (
        ["--data", "{w}/unclosed.csv", "--column", "text"],
        1,
        "unclosed.csv: not valid CSV after 0 row(s) (unexpected end of data)",
    ),
    (
        ["--data", "{w}/corpus.txt", "--output", "{w}/notes.txt/x.json"],
        1,
        "is a file, not a folder",
    ),
    (["--data", "{w}/corpus.txt", "--output", "{w}/mine"], 2, "is a directory"),
    (["--data", "{w}/corpus.txt", "--mask-prob", "nan"], 2, "'nan' is not a finite number"),
    (["--data", "{w}/corpus.txt", "--mask-prob", "1"], 2, "is not in the range 0<x<1"),
    (["--data", "{w}/corpus.txt", "--device", "quantum"], 1, "unknown device 'quantum'"),
    (["--data", "{w}/corpus.txt", "--model", "{w}/missing"], 1, "cannot load"),
    (["--data", "{w}/corpus.txt", "--max-length", "3"], 2, "is not in the range x>=4"),
    (["--data", "{w}/corpus.txt", "--seed", "-1"], 2, "is not in the range"),
    (["--data", "{w}/corpus.txt", "--max-length", "4096"], 1, "exceeds the model's 128 positions"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), PERPLEXITY, ids=[str(i) for i in range(len(PERPLEXITY))]
)
def test_perplexity(bad_input, args, code, expected):
    argv = ["perplexity", *args]
    if "--model" not in args:
        argv += ["--model", "{m}"]
    bad_input(evaluate, argv, code, expected)


XCOPA = ["--tasks", "xcopa_tr", "--data-files"]
BLIMP = ["--tasks", "turblimp_binding", "--data-files"]
BENCH = [
    (["--baseline", "hf:{w}/model,trust_remote_code=True"], 1, "model arguments cannot be given"),
    (["--baseline", "hf:gpt2,dtype=float16"], 1, "model arguments cannot be given"),
    (["--baseline", "gpt2"], 1, "write hf:MODEL_ID (or hf:DIR)"),
    (["--tasks", "foo"], 1, "unknown task(s) foo; known: belebele_tr"),
    ([*XCOPA, "xcopa_tr={w}/missing.jsonl"], 1, "xcopa_tr: {w}/missing.jsonl does not exist"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-textlabel.jsonl"], 1, "label must be 0 or 1 (a number), got '1'"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-latin1.jsonl"], 1, "xcopa-latin1.jsonl:1: not valid UTF-8"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-empty.jsonl"], 1, "xcopa-empty.jsonl has no rows"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-nocolumns.jsonl"], 1, "lacks column(s) choice1"),
    ([*XCOPA, "xcopa_tr={w}/table.csv"], 1, "lacks column(s) premise"),
    ([*XCOPA, "xcopa_tr={w}/notes.txt"], 1, "is not .jsonl, .csv, .tsv or .parquet"),
    ([*XCOPA, "xcopa_tr"], 1, "write TASK=PATH"),
    ([*XCOPA, "copa={w}/xcopa.jsonl"], 1, "unknown task 'copa'"),
    (["--tasks", "ironytr", "--data-files", "ironytr={w}/irony-evet.jsonl"], 1, "got 'Evet'"),
    (["--tasks", "sts_tr", "--data-files", "sts_tr={w}/sts-words.csv"], 1, "got 'high'"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--output-dir", "{w}/mine"], 1, "did not make"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--output-dir", "{w}/a-run"], 1, "not a bench folder"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--limit", "0"], 1, "--limit must be at least 1"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--device", "cuda:9"], 1, "'cuda:9' is not available"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--model", "{w}/missing"], 1, "cannot load"),
    ([*XCOPA, "xcopa_tr={w}/xcopa.jsonl", "--seed", "-3"], 2, "is not in the range"),
    (["--tasks", "xcopa_tr"], 1, "offline and no --data-files for xcopa_tr"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-question.jsonl"], 1, "question must be one of cause, effect"),
    ([*XCOPA, "xcopa_tr={w}/xcopa-emptychoice.jsonl"], 1, "choice1 must be text that is not empty"),
    ([*BLIMP, "turblimp_binding={w}/turblimp-nocolumn.csv"], 1, "lacks column(s) sentence_good"),
    ([*BLIMP, "turblimp_binding={w}/turblimp-emptybad.csv"], 1, "sentence_bad must be a sentence"),
    ([*BLIMP, "turblimp_binding={w}/turblimp-same.csv"], 1, "or pass --drop-equal-pairs to"),
    ([*BLIMP, "turblimp_binding={w}/turblimp-latin1.csv"], 1, "turblimp-latin1.csv:2: not valid"),
    ([*BLIMP, "turblimp_binding={w}/turblimp-comma.csv"], 1, "separated by ',', but these files"),
    (
        [
            "--tasks",
            "multiblimp_tur",
            "--data-files",
            "multiblimp_tur={w}/multiblimp-semi.csv",
        ],
        1,
        "its header is separated by ';', but these files are separated by ','",
    ),
    ([*BLIMP, "turblimp={w}/mine"], 1, "mine lacks augmented_anaphor_agreement.csv"),
    (["--suite", "grammer"], 2, "'grammer' is not one of"),
    (["--suite", "grammar"], 1, "offline and no --data-files for turblimp_anaphor_agreement"),
    ([*BLIMP, "turblimp_binding={w}/xcopa.jsonl", "--likelihood", "ppl"], 2, "'ppl' is not one of"),
]


@pytest.mark.parametrize(
    ("args", "code", "expected"), BENCH, ids=[str(i) for i in range(len(BENCH))]
)
def test_bench(bad_input, world, args, code, expected):
    argv = ["bench", *args]
    if "--model" not in args:
        argv += ["--model", "{m}"]
    if "--output-dir" not in args:
        argv += ["--output-dir", "{w}/bench"]
    bad_input(evaluate, argv, code, expected)
    assert not (world / "bench").exists()


DEMO = [
    (["--output-dir", "{w}/mine"], 1, "holds files Diffutron did not make"),
    (["--output-dir", "{w}/mine", "--force"], 1, "holds files Diffutron did not make"),
    (["--output-dir", "{w}/a-run", "--force"], 1, "is a Diffutron run folder, not a demo folder"),
    (["--output-dir", "{w}/a-file"], 1, "is a file, not a folder"),
    (["--output-dir", "{w}/notes.txt/demo"], 1, "a file is in the way"),
    (["--output-dir", "{w}/new-demo", "--cpt-epochs", "nan"], 2, "'nan' is not a finite number"),
    (["--output-dir", "{w}/new-demo", "--sft-epochs", "0"], 2, "is not in the range x>0"),
    (["--output-dir", "{w}/new-demo", "--eval-rows", "1"], 2, "is not in the range x>=2"),
]


@pytest.mark.parametrize(("args", "code", "expected"), DEMO, ids=[str(i) for i in range(len(DEMO))])
def test_demo(bad_input, world, args, code, expected):
    bad_input(diffutron, ["demo", *args, "--no-live"], code, expected)
    assert not (world / "new-demo").exists()
