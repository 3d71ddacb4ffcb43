"""Corpus-builder throughput, memory and padding; with ``--scale``, how they grow with the corpus.

    uv run python benchmarks/data_throughput.py [--repeat 10] [--max-length 128]
    uv run python benchmarks/data_throughput.py --scale [--sizes 20,200,2000] [--max-length 512]
    uv run python benchmarks/data_throughput.py --scale --sft [--sizes 20,200,2000]

Default: the shared UD Turkish text (one sentence a line, else the embedded corpus's sentences)
repeated ``--repeat`` times, built by ``prepare cpt`` at ``--num-proc`` 1 and 2 (and at 1 with
the tokenizer's own threads off: one core), then the pad fraction of random batches of 64 padded
to their longest row, to ``max_length``, and of packed rows.

``--scale``: synthetic Turkish documents (3 to 12 of those sentences each, seeded) of each size in
MB, and for each: ``prepare cpt`` with 1 process on one core (the tokenizer's threads off), 1
process with the tokenizer's threads (the default: all cores) and 2 processes (wall time, the
speed-up over one core, MB/s, tokens/s, peak RSS), then ``cpt --data`` on the prepared folder
with ``--max-steps 1`` (the time to the first step, start-up included) and ``--max-steps 3``
(wall, peak RSS). Every command runs in a process of its own, measured from a parent of its own;
its peak RSS is that of its largest process (``ru_maxrss`` of the children): with 2 processes,
the parent's or one worker's, not their sum.

``--scale --sft``: the same for instruction rows: synthetic Alpaca rows (an instruction of one
sentence, an input of 0 to 3, an output of 1 to 4) of each size, ``prepare sft`` with 1 and 2
processes, then ``sft --data`` on the demo's CPT model with ``--max-steps 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PEAK = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": done.returncode, "err": done.stderr[-2000:],
    "seconds": time.perf_counter() - start,
    "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""
TRAIN = [sys.executable, "-m", "diffutron_cli.train"]
BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The environment of every measured command: Python keeps its compiled bytecode, as it does on
a user's machine (without it every command compiles the libraries it imports again)."""


def measured(argv: list[str], **env: str) -> dict:
    """Exit code, wall seconds and peak RSS (bytes) of a command."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *argv],
        capture_output=True,
        text=True,
        env={**BYTECODE, **env},
    )
    result = json.loads(done.stdout)
    if result["code"]:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result['err']}")
    return result


def sentences() -> list[str]:
    from common import ud_sentences

    try:
        return ud_sentences()
    except SystemExit:
        from diffutron_data import corpus_sentences

        return list(corpus_sentences())


def synthetic(path: Path, megabytes: float, lines: list[str]) -> None:
    rng, size, target = random.Random(0), 0, int(megabytes * 2**20)
    with path.open("w", encoding="utf-8") as out:
        while size < target:
            document = " ".join(rng.choice(lines) for _ in range(rng.randint(3, 12)))
            out.write(document + "\n")
            size += len(document.encode("utf-8")) + 1


def prepare(source: Path, out: Path, max_length: int, processes: int, **env: str) -> dict:
    argv = [*TRAIN, "prepare", "cpt", "--preset", "tiny", "--source", str(source)]
    argv += ["--output-dir", str(out), "--max-length", str(max_length)]
    result = measured([*argv, "--num-proc", str(processes), "--overwrite"], **env)
    result["tokens"] = json.loads((out / "manifest.json").read_text())["tokens"]
    return result


RUNS = [  # (name, processes, environment): one core, then the tokenizer's threads, then two
    ("1, one thread", 1, {"TOKENIZERS_PARALLELISM": "false"}),
    ("1, threads", 1, {}),
    ("2", 2, {}),
]


def sized(sizes: str, suffix: str, make, lines: list[str]) -> Iterator[tuple[float, Path, Path]]:
    """For each size in MB of ``sizes`` (comma-separated): ``(size, a file that make(path, size,
    lines) wrote, a scratch folder)``; the file goes after its turn."""
    with tempfile.TemporaryDirectory() as tmp:
        for megabytes in (float(s) for s in sizes.split(",")):
            source = Path(tmp) / f"data-{megabytes:g}{suffix}"
            make(source, megabytes, lines)
            yield megabytes, source, Path(tmp)
            source.unlink()


def announced(what: str, head: str) -> list[str]:
    """The sentences the synthetic data is made of, once the run's header is printed."""
    lines = sentences()
    print(f"{os.cpu_count()} CPUs; synthetic {what} of {len(lines)} sentences, tiny tokenizer")
    print(head)
    return lines


def scale(args) -> None:
    head = "size MB | processes     | prepare s | speed-up | MB/s | tokens/s | peak RSS GB"
    lines = announced(
        "documents", f"{head} | first step s | first-step RSS GB | 3 steps s | 3-step RSS GB"
    )
    for megabytes, source, tmp in sized(args.sizes, ".txt", synthetic, lines):
        single = None
        for name, processes, env in RUNS:
            out = tmp / "prepared"
            built = prepare(source, out, args.max_length, processes, **env)
            single = single or built["seconds"]
            line = (
                f"{megabytes:>7g} | {name:<13} | {built['seconds']:>9.1f} | "
                f"{single / built['seconds']:>7.2f}x | {megabytes / built['seconds']:>4.1f} | "
                f"{built['tokens'] / built['seconds']:>8,.0f} | {built['peak'] / 1e9:>11.2f}"
            )
            if name == RUNS[-1][0]:
                line += " | " + first_steps(out, tmp / f"run{megabytes:g}")
            print(line, flush=True)


def synthetic_rows(path: Path, megabytes: float, lines: list[str]) -> None:
    rng, size, target = random.Random(0), 0, int(megabytes * 2**20)
    with path.open("w", encoding="utf-8") as out:
        while size < target:
            row = {
                "instruction": rng.choice(lines),
                "input": " ".join(rng.choice(lines) for _ in range(rng.randint(0, 3))),
                "output": " ".join(rng.choice(lines) for _ in range(rng.randint(1, 4))),
            }
            line = json.dumps(row, ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode("utf-8"))


def scale_sft(args) -> None:
    head = "size MB | processes | prepare s | MB/s | tokens/s | peak RSS GB"
    lines = announced("Alpaca rows", f"{head} | first step s | first-step RSS GB")
    for megabytes, source, tmp in sized(args.sizes, ".jsonl", synthetic_rows, lines):
        for processes in (1, 2):
            out = tmp / "prepared"
            argv = [*TRAIN, "prepare", "sft", "--preset", "tiny", "--source", str(source)]
            argv += ["--output-dir", str(out), "--max-length", str(args.max_length)]
            argv += ["--synthetic", "0", "--num-proc", str(processes), "--overwrite"]
            built = measured(argv)
            tokens = json.loads((out / "manifest.json").read_text())["tokens"]
            line = (
                f"{megabytes:>7g} | {processes:>9} | {built['seconds']:>9.1f} | "
                f"{megabytes / built['seconds']:>4.1f} | {tokens / built['seconds']:>8,.0f} | "
                f"{built['peak'] / 1e9:>11.2f}"
            )
            if processes == 2:
                run = [*TRAIN, "sft", "--model", args.model, "--data", str(out)]
                run += ["--output-dir", f"{tmp}/sft{megabytes:g}", "--max-steps", "1"]
                step = measured([*run, "--save-every", "1000"])
                line += f" | {step['seconds']:>12.1f} | {step['peak'] / 1e9:>17.2f}"
            print(line, flush=True)


def first_steps(data: Path, runs: Path) -> str:
    """The time to the first step and the peak RSS of ``cpt --max-steps`` 1 and 3 on ``data``."""
    steps = []
    for count in (1, 3):
        run = [*TRAIN, "cpt", "--preset", "tiny", "--data", str(data)]
        run += ["--output-dir", f"{runs}-{count}", "--max-steps", str(count)]
        run += ["--save-every", "1000"]
        steps.append(measured(run))
    return (
        f"{steps[0]['seconds']:>12.1f} | {steps[0]['peak'] / 1e9:>17.2f} | "
        f"{steps[1]['seconds']:>9.1f} | {steps[1]['peak'] / 1e9:>13.2f}"
    )


def throughput(args) -> None:
    from diffutron_data import padding_fraction

    lines = sentences()
    texts = lines * args.repeat
    print(f"{len(lines)} sentences x {args.repeat} = {len(texts)} documents, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "ud.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print(f"\n{'prepare':>34} | {'documents/s':>11} | {'peak RSS GB':>11}")
        runs = [("1 process, tokenizer threads", 1, {}), ("2 processes", 2, {})]
        runs.insert(1, ("1 process, one thread", 1, {"TOKENIZERS_PARALLELISM": "false"}))
        for name, processes, env in runs:
            out = Path(tmp) / "out"
            built = prepare(source, out, args.max_length, processes, **env)
            rate = len(texts) / built["seconds"]
            print(f"{name:>34} | {rate:>11,.0f} | {built['peak'] / 1e9:>11.2f}")
        import datasets

        corpus = datasets.load_from_disk(str(out))
        lengths = corpus["length"][: len(corpus) // args.repeat]  # about one copy of the text
    print(f"\npadding at batch 64 ({len(lengths)} documents):")
    longest = padding_fraction(lengths, batch_size=64)
    padded = padding_fraction(lengths, batch_size=64, pad_to=args.max_length)
    print(f"  padded to the longest in the batch: {longest:6.1%}")
    print(f"  padded to max_length:               {padded:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=None, help="[128; --scale 512]")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--sizes", default="20,200,2000", help="--scale: corpus sizes in MB")
    parser.add_argument("--sft", action="store_true", help="--scale: instruction rows")
    parser.add_argument("--model", default="runs/demo/cpt/model", help="--sft: the model tuned")
    args = parser.parse_args()
    if args.sft and not args.scale:
        parser.error("--sft goes with --scale")
    if args.sft and not Path(args.model, "config.json").is_file():
        parser.error(f"no model at {args.model} to tune: run `uv run diffutron demo` or --model")
    if args.scale and args.sft:
        args.max_length = args.max_length or 512
        scale_sft(args)
    elif args.scale:
        args.max_length = args.max_length or 512
        scale(args)
    else:
        args.max_length = args.max_length or 128
        throughput(args)


if __name__ == "__main__":
    main()
