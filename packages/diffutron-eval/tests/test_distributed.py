"""Data-parallel evaluation: one process and two (torchrun, CPU, gloo) give the same scores, each
of the two scoring only its share; a launch that cannot start is one line."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffutron_eval import DiffutronLM, EvalError, Processes, start_processes
from diffutron_eval.distributed import rank_device

WORKER = Path(__file__).parent / "scripts" / "eval_worker.py"
FIXTURES = Path(__file__).parent / "fixtures"

# Five XCOPA rows: two processes take three and two (lm-eval pads the shorter share).
XCOPA = [
    ("Kadın çok yoruldu.", "Erkenden uyudu.", "Dans etmeye gitti.", "effect", 0),
    ("Yerler ıslaktı.", "Güneş parladı.", "Gece yağmur yağdı.", "cause", 1),
    ("Elektrik kesildi.", "Işıklar söndü.", "İnsanlar güldü.", "effect", 0),
    ("Öğrenci sınavı kazandı.", "Çok çalışmıştı.", "Kalemini kaybetmişti.", "cause", 0),
    ("Çocuk düştü.", "Dizini yaraladı.", "Şarkı söyledi.", "effect", 0),
]


def launch(processes: int, out: Path, model_dir: Path, texts: Path, data_files: list[str]):
    """The worker under ``torchrun --nproc_per_node processes``: each rank's report."""
    out.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "DIFFUTRON_NO_PROGRESS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        str(WORKER),
        str(model_dir),
        str(texts),
        str(out),
        *data_files,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]


def split_evenly(shares: list[list[int]], everything: list[int]) -> None:
    """Each share is non-empty, no two overlap, and together they are ``everything``."""
    sets = [set(s) for s in shares]
    assert all(sets) and sum(len(s) for s in sets) == len(set().union(*sets))
    assert set().union(*sets) == set(everything)


@pytest.mark.slow
def test_one_process_and_two_give_the_same_scores_each_scoring_its_share(tmp_path, model_dir, kit):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(kit.sentences(24)) + "\n", encoding="utf-8")
    xcopa = tmp_path / "xcopa_tr.jsonl"
    keys = ("premise", "choice1", "choice2", "question", "label")
    rows = [json.dumps(dict(zip(keys, r, strict=True)), ensure_ascii=False) for r in XCOPA]
    xcopa.write_text("\n".join(rows) + "\n", encoding="utf-8")
    files = [f"xcopa_tr={xcopa}", f"ironytr={FIXTURES / 'ironytr.jsonl'}"]
    files.append(f"news_cat={FIXTURES / 'news_cat.jsonl'}")
    pairs = kit.write_turblimp(tmp_path / "binding.csv", kit.minimal_pairs(kit.sentences(), 12))
    files.append(f"turblimp_binding={pairs}")  # scored by pll-word-l2r, its worst pairs gathered
    started = time.perf_counter()
    (alone,) = launch(1, tmp_path / "one", model_dir, texts, files)
    ranks = launch(2, tmp_path / "two", model_dir, texts, files)
    print(f"one process and two: {time.perf_counter() - started:.1f} s")
    assert alone["world_size"] == 1
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["backend"] == "gloo"

    # bench: rank 0 alone wrote, and lm-eval's results are the same. (Bootstrap standard errors,
    # F1's, match here because ironytr's two rows keep their order: lm-eval pools the documents
    # rank by rank, so with more rows they may differ; the scores themselves cannot.)
    files_written = ["chart", "report", "results", "table"]
    assert ranks[0]["bench"] == {"rank": 0, "processes": 2, "files": files_written}
    assert ranks[1]["bench"] == {"rank": 1, "processes": 2, "files": []}
    one, two = (tmp_path / run / "bench" for run in ("one", "two"))
    results = [json.loads((d / "results.json").read_text())["results"] for d in (one, two)]
    assert set(results[0]) == {"xcopa_tr", "ironytr", "news_cat", "turblimp_binding"}
    assert results[0] == results[1]
    assert (one / "table.md").read_text() == (two / "table.md").read_text()
    assert alone["worst"] and ranks[0]["worst"] == alone["worst"]  # every rank's pairs gathered
    for task, docs in alone["bench_shard"].items():
        split_evenly([r["bench_shard"][task] for r in ranks], docs)
    assert alone["bench_shard"]["xcopa_tr"] == [0, 1, 2, 3, 4]

    # perplexity: every rank returns the whole figure, the one process's to the last bit
    for method in ("pseudo", "bound"):
        assert ranks[0][method] == ranks[1][method] == {**alone[method], "processes": 2}
        split_evenly([r[f"{method}_shard"] for r in ranks], alone[f"{method}_shard"])
    assert alone["bound"]["method"] == "elbo" and alone["pseudo"]["windows"] == 24


def test_a_lone_process_is_rank_zero_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert start_processes("cpu") == Processes(0, 1, 0, "cpu")
    assert start_processes().main and start_processes().device is None


def test_each_process_of_a_launch_takes_its_own_device(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    two = Processes(rank=3, world_size=4, local_rank=1)
    assert rank_device(None, two) == rank_device("cuda", two) == "cuda:1"
    assert rank_device("cpu", two) == "cpu" and rank_device("cuda:0", two) == "cuda:0"
    assert rank_device(None, Processes()) is None  # a lone process: the loader's default


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 does not fit WORLD_SIZE=2"),
        (
            {"WORLD_SIZE": "2", "RANK": "1"},
            "cannot start the 2-process group as rank 1 \\(gloo\\): .*MASTER_ADDR",
        ),
    ],
)
def test_a_launch_that_cannot_start_is_one_line(monkeypatch, model_dir, environment, message):
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(EvalError, match=message) as error:
        start_processes("cpu")
    assert "\n" not in str(error.value) and "torchrun --nproc_per_node N" in str(error.value)
    with pytest.raises(EvalError, match=message):
        DiffutronLM(str(model_dir), device="cpu")
