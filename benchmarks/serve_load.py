"""Server load: concurrent OpenAI clients on diffutron-serve beside the same requests one by one.

    uv run python benchmarks/serve_load.py [--model runs/demo/sft/model] [--requests-per-client 4]
        [--clients 1,4,16] [--max-tokens 32] [--max-batch 16] [--rounds 3]

Starts the server in this process (`serve_in_thread`: uvicorn on 127.0.0.1, a free port) on an
SFT model (the demo's: `uv run diffutron demo` writes runs/demo/sft/model) with max_batch at least
the largest level, and warms it up. Then, for each level of concurrency C, it sends C x M chat
requests (M = --requests-per-client) through the `openai` client, temperature 0: first one at a
time from one client, then from C clients at once, each a thread with its own `openai.OpenAI`
sending its M requests one after the other. Request i asks prompt i: the demo's synthetic tasks
(is_question, first_word, repeat) on held-out sentences of the embedded corpus. Each level runs
--rounds such pairs back to back, so that both halves of a comparison see the same load on a
shared machine; its figures pool the rounds.

Then, with the server stopped, the requests of each level run as one offline batch through the
engine on the same model and settings, with no HTTP, and a second table sets the server's
tokens/s beside that figure (#20: at 16 clients the server should reach 90% of it).

Prints a Markdown table, two rows per level (the requests one at a time, then concurrently):
requests, errors, generated tokens/s (`usage.completion_tokens` over wall time), p50/p95/p99
latency per request and the concurrent speed-up over the same requests one at a time; and
whether every concurrent answer equals its one-at-a-time answer (the engine promises that a
request's output does not depend on what shares its batch). The clients share the machine with
the server, as clients on one host would.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

TASKS = ("is_question", "first_word", "repeat")
"""The synthetic tasks the demo's SFT model is trained on."""


@dataclass
class Result:
    index: int
    seconds: float
    tokens: int = 0
    text: str | None = None
    error: str | None = None


def prompts(count: int) -> list[str]:
    """``count`` chat prompts: the demo's tasks on held-out corpus sentences, tasks interleaved."""
    from diffutron_data import corpus_sentences, make_task_rows

    sentences = [s for s in corpus_sentences(heldout=True) if 3 <= len(s.split()) <= 12]
    per_task = [make_task_rows(task, sentences, n=count) for task in TASKS]
    rows = [row for group in zip(*per_task, strict=False) for row in group][:count]
    if len(rows) < count:
        raise SystemExit(f"only {len(rows)} prompts from the held-out sentences, {count} needed")
    return [f"{row['instruction']}\n\n{row['input']}" for row in rows]


def client(url: str, timeout: float):
    from openai import OpenAI

    return OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=timeout)


def ask(api, model: str, prompt: str, index: int, max_tokens: int) -> Result:
    start = time.perf_counter()
    try:
        reply = api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0,
        )
    except Exception as exc:  # counted, never retried
        return Result(index, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    return Result(index, seconds, reply.usage.completion_tokens, reply.choices[0].message.content)


def run_level(url, model, texts, clients: int, per_client: int, max_tokens, timeout):
    """``clients`` threads, client k sending requests k*per_client … (k+1)*per_client-1 in order;
    ``(results by index, wall seconds)``."""
    results: list[Result | None] = [None] * (clients * per_client)
    apis = [client(url, timeout) for _ in range(clients)]  # made before the clock starts
    ready = threading.Barrier(clients + 1)

    def work(k: int) -> None:
        ready.wait()  # every client starts sending at once
        for i in range(k * per_client, (k + 1) * per_client):
            results[i] = ask(apis[k], model, texts[i], i, max_tokens)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - start


def offline(server, texts: list[str], max_tokens: int, max_batch: int):
    """The same requests as one offline batch through the engine, on the server's model and
    settings, with no HTTP: ``(generated tokens, seconds, answers)``, tokens counted as the
    server's usage counts them."""
    from diffutron_sample import Engine
    from diffutron_sample.text import AnswerReader
    from diffutron_serve.requests import chat_job

    tokenizer, lm = server.tokenizer, server.worker.engine.lm
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    engine = Engine(lm, tokenizer.mask_token_id, tokenizer.eos_token_id, pad, max_batch=max_batch)
    jobs = []
    for text in texts:
        body = {"model": server.name, "messages": [{"role": "user", "content": text}]}
        body.update(max_tokens=max_tokens, temperature=0)
        jobs.append(chat_job(body, tokenizer, server.defaults, server.name))
    start = time.perf_counter()
    for i, job in enumerate(jobs):
        engine.add(i, job.ids, job.config)
    answers: dict[int, object] = {}
    while engine.busy:
        for event in engine.step():
            if event.done:
                job = jobs[event.id]
                region = engine.pop(event.id).canvas.tolist()[len(job.ids) :]
                reader = AnswerReader(tokenizer, stop=job.stop, max_tokens=job.max_tokens)
                answers[event.id] = reader.read(region, done=True)
    seconds = time.perf_counter() - start
    ordered = [answers[i] for i in range(len(jobs))]
    return sum(a.tokens for a in ordered), seconds, [a.text for a in ordered]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]


HEADER = (
    "clients",
    "requests",
    "errors",
    "tokens/s",
    "p50 (s)",
    "p95 (s)",
    "p99 (s)",
    "speed-up vs one at a time",
)


def row(label: str, requests: list[Result], seconds: float, baseline: float | None):
    """A table row and its tokens/s; ``baseline``: the one-at-a-time tokens/s to compare with."""
    ok = [r for r in requests if r.error is None]
    rate = sum(r.tokens for r in ok) / seconds
    latencies = [r.seconds for r in ok] or [float("nan")]
    q = [percentile(latencies, p) for p in (50, 95, 99)]
    speed = f"{rate / baseline:.2f}x" if baseline else "-"
    cells = [label, str(len(requests)), str(len(requests) - len(ok)), f"{rate:.1f}"]
    cells += [f"{v:.2f}" for v in q] + [speed]
    return "| " + " | ".join(cells) + " |", rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("runs/demo/sft/model"),
        help="an SFT model dir [runs/demo/sft/model, written by `uv run diffutron demo`]",
    )
    parser.add_argument(
        "--requests-per-client", type=int, default=4, metavar="M", help="requests per client [4]"
    )
    parser.add_argument(
        "--clients", default="1,4,16", help="concurrency levels, comma-separated [1,4,16]"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=32, help="max_tokens of every request [32]"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=16,
        help="the server's max_batch (raised to the largest level if below it) [16]",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds per level, each the requests one at a time then concurrently; figures "
        "pool the rounds [3]",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request [300]")
    parser.add_argument("--device", help="the server's device [cuda when present]")
    parser.add_argument(
        "--cache", choices=["prefix", "dual"], help="the server's default block cache [none]"
    )
    args = parser.parse_args()
    try:
        levels = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--clients takes whole numbers separated by commas, not {args.clients!r}")
    if not levels or min(levels[0], args.requests_per_client, args.max_tokens, args.rounds) < 1:
        parser.error("--clients, --requests-per-client, --max-tokens and --rounds must be >= 1")
    if not (args.model / "config.json").is_file():
        parser.error(f"no model at {args.model}: run `uv run diffutron demo` or pass --model DIR")

    from diffutron_serve import create_app, serve_in_thread

    m, total = args.requests_per_client, max(levels) * args.requests_per_client
    max_batch = max(args.max_batch, max(levels))
    texts = prompts(total)
    begin = time.perf_counter()
    sampler = {"cache": args.cache} if args.cache else None
    app = create_app(
        str(args.model), max_batch=max_batch, max_queue=total, device=args.device, sampler=sampler
    )
    running = serve_in_thread(app, timeout=60)  # uvicorn on 127.0.0.1, a free port
    url = f"{running.url}/v1"
    try:
        api = client(url, args.timeout)
        model = api.models.list().data[0].id
        device = next(app.state.server.worker.engine.lm.model.parameters()).device
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
            f"device {device}; model {args.model} ({model}); max_batch {max_batch}, "
            f"max_tokens {args.max_tokens}, {m} requests per client, temperature 0; load "
            f"average {os.getloadavg()[0]:.1f} at the start"
        )
        # warm-up: a few requests alone, then one from each client of the largest level at once
        warm = [ask(api, model, texts[i], i, args.max_tokens) for i in range(min(8, total))]
        warm += run_level(url, model, texts, max(levels), 1, args.max_tokens, args.timeout)[0]
        if any(r.error for r in warm):
            raise SystemExit(f"warm-up failed: {next(r.error for r in warm if r.error)}")

        measured = []  # (clients, one at a time, its seconds, concurrent, its seconds)
        for clients in levels:
            n = clients * m
            alone, concurrent, alone_s, concurrent_s = [], [], 0.0, 0.0
            for _ in range(args.rounds):  # each round: the requests one at a time, then at once
                start = time.perf_counter()
                alone += [ask(api, model, texts[i], i, args.max_tokens) for i in range(n)]
                alone_s += time.perf_counter() - start
                results, seconds = run_level(
                    url, model, texts, clients, m, args.max_tokens, args.timeout
                )
                concurrent += results
                concurrent_s += seconds
            measured.append((clients, alone, alone_s, concurrent, concurrent_s))
            print(
                f"{clients} clients x {m} requests x {args.rounds} rounds: {alone_s:.1f} s one "
                f"at a time, {concurrent_s:.1f} s concurrent"
            )
    finally:
        running.stop(timeout=30)
    with torch.no_grad():  # the server's engine thread has stopped: its model is free
        batches = [
            offline(app.state.server, texts[: c * m], args.max_tokens, max_batch)
            for c, *_ in measured
        ]

    print()
    print(f"| {' | '.join(HEADER)} |")
    print("|---|" + "---:|" * (len(HEADER) - 1))
    same = compared = 0
    failed = []
    for clients, alone, alone_s, concurrent, concurrent_s in measured:
        line, one_rate = row("1, one at a time", alone, alone_s, None)
        print(line)
        print(row(str(clients), concurrent, concurrent_s, one_rate)[0])
        for got, ref in zip(concurrent, alone, strict=True):
            failed += [r.error for r in (got, ref) if r.error]
            if got.error is None and ref.error is None:
                compared += 1
                same += got.text == ref.text
    print(f"\nconcurrent answers equal to the same request one at a time: {same}/{compared}")
    print("\nthe same requests as one offline batch through the engine (no HTTP), max_batch")
    print(f"{max_batch}, against the concurrent clients:\n")
    print("| clients | requests | offline tokens/s | server tokens/s | server / offline |")
    print("|---|---:|---:|---:|---:|")
    for (clients, _, _, concurrent, seconds), (tokens, offline_s, texts_) in zip(
        measured, batches, strict=True
    ):
        rate = sum(r.tokens for r in concurrent if r.error is None) / seconds
        alone = tokens / offline_s
        matches = sum(a == r.text for a, r in zip(texts_, concurrent, strict=False))
        print(
            f"| {clients} | {len(texts_)} | {alone:.1f} | {rate:.1f} | {rate / alone:.0%} |"
            f" <!-- {matches}/{len(texts_)} offline answers equal the server's -->"
        )
    if failed:
        print(f"{len(failed)} errors; the first: {failed[0]}")
    print(f"wall time {time.perf_counter() - begin:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
