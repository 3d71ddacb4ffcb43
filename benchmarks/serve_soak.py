"""Soak: many mixed requests against one diffutron-serve process, then the steady state.

    uv run python benchmarks/serve_soak.py [--model runs/demo/sft/model] [--requests 10000]
        [--concurrency 32] [--max-batch 16] [--max-tokens 4,32] [--no-steady]

Starts `diffutron_serve.serve` in a process of its own on 127.0.0.1 (its RSS is read from /proc)
and sends --requests requests from --concurrency client threads (httpx), drawn with a fixed seed
from a mix: chat and completions, streamed and not, infill (`suffix`), sampled or greedy with a
seed; streams the client drops after their first event; requests whose client gives up before
the answer (a 0.2 s timeout); and malformed requests of a dozen kinds, each expecting its 4xx.
An outcome is *unexpected* when it is anything else: a 5xx, another status, a 429, a connection
error, a stream without its end.

Prints the unexpected failures (count and the first few), p50/p95/p99 latency of the answered
requests and time to first token of the streamed ones, generated tokens/s, and the server's RSS
at the start, after the first 500 requests and at the end. Then (unless --no-steady) the 16-client
steady state of benchmarks/serve_load.py, in 3 rounds: 16 clients x 4 greedy chat requests on a
server in this process, then the same requests as one offline batch through the engine; pooled.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

PROMPTS = [
    "merhaba",
    "Bu bir soru mu?\n\nBugün hava güzel.",
    "İlk kelime nedir?\n\nKedi süt içer.",
    "Tekrar et:\n\nDeniz mavi.",
    "kedi nasıl ?",
    "bir iki üç",
    "Son kelime nedir?\n\nOkul yolu uzun.",
    "deniz ve dağ",
]
MIX = {
    "chat": 26,
    "chat_stream": 18,
    "text": 12,
    "text_stream": 10,
    "infill": 10,
    "dropped_stream": 6,
    "abandoned": 4,
    "bad": 14,
}
"""Kinds of request and their weights."""
BAD = [
    ("not JSON", "{not json", "application/json", 400),
    ("no model", {"messages": [{"role": "user", "content": "x"}]}, None, 400),
    (
        "unknown model",
        {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]},
        None,
        404,
    ),
    ("text/plain", "{}", "text/plain", 415),
    ("max_tokens 0", {"max_tokens": 0}, None, 400),
    ("n 2", {"n": 2}, None, 400),
    ("logprobs", {"logprobs": True}, None, 400),
    ("seed 2**64", {"seed": 2**64}, None, 400),
    ("no messages", {"messages": []}, None, 400),
    ("max_tokens 10**9", {"max_tokens": 10**9}, None, 400),
    ("temperature text", {"temperature": "hot"}, None, 400),
    ("steps not whole blocks", {"steps": 3, "max_tokens": 16, "block_length": 8}, None, 400),
]


@dataclass
class Outcome:
    kind: str
    status: str  # "ok", "expected", "cancelled" or "unexpected"
    seconds: float
    first: float | None = None
    tokens: int = 0
    why: str = ""


def rss_mib(pid: int) -> float:
    """A process's resident set, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body_of(kind: str, rng: random.Random, model: str, span: tuple[int, int]) -> dict:
    prompt = rng.choice(PROMPTS)
    body: dict = {"model": model, "max_tokens": rng.randint(*span)}
    if rng.random() < 0.5:
        body.update(temperature=0.7, seed=rng.randrange(2**32))
    else:
        body["temperature"] = 0
    if kind.startswith("chat") or kind in ("dropped_stream", "abandoned"):
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt.replace("\n", " ")
    if kind == "infill":
        body["suffix"] = " " + rng.choice(PROMPTS).split("\n")[-1]
    if kind.endswith("stream"):
        body["stream"] = True
        body["canvas"] = rng.random() < 0.3
    return body


def stream(http: httpx.Client, path: str, body: dict, kind: str, start: float) -> Outcome:
    first, tokens, ended = None, 0, False
    with http.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            return Outcome(kind, "unexpected", 0, why=f"stream status {response.status_code}")
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                ended = True
                break
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return Outcome(kind, "unexpected", 0, why=f"stream error {chunk['error']}")
            if kind == "dropped_stream":
                return Outcome(kind, "cancelled", time.perf_counter() - start)
            choice = chunk["choices"][0]
            if first is None and (choice.get("delta", {}).get("content") or choice.get("text")):
                first = time.perf_counter() - start
            tokens = chunk.get("usage", {}).get("completion_tokens", tokens)
    if not ended:
        return Outcome(kind, "unexpected", 0, why="the stream ended without [DONE]")
    return Outcome(kind, "ok", time.perf_counter() - start, first, tokens)


def one(url: str, model: str, kind: str, seed: int, span: tuple[int, int]) -> Outcome:
    rng = random.Random(seed)
    start = time.perf_counter()
    chat = kind.startswith("chat") or kind in ("dropped_stream", "abandoned", "bad")
    path = "/v1/chat/completions" if chat else "/v1/completions"
    try:
        with httpx.Client(base_url=url, timeout=0.2 if kind == "abandoned" else 600) as http:
            if kind == "bad":
                name, payload, media, expected = BAD[seed % len(BAD)]
                if isinstance(payload, dict):
                    base = {"model": model, "messages": [{"role": "user", "content": "x"}]}
                    payload = json.dumps({**base, **payload} if name != "no model" else payload)
                response = http.post(
                    path, content=payload, headers={"content-type": media or "application/json"}
                )
                if response.status_code == expected and "error" in response.json():
                    return Outcome(kind, "expected", time.perf_counter() - start)
                return Outcome(kind, "unexpected", 0, why=f"{name}: {response.status_code}")
            body = body_of(kind, rng, model, span)
            if body.get("stream"):
                return stream(http, path, body, kind, start)
            response = http.post(path, json=body)
            if response.status_code != 200:
                why = f"{kind}: {response.status_code} {response.text[:200]}"
                return Outcome(kind, "unexpected", 0, why=why)
            tokens = response.json()["usage"]["completion_tokens"]
            return Outcome(kind, "ok", time.perf_counter() - start, tokens=tokens)
    except httpx.TimeoutException:
        if kind == "abandoned":
            return Outcome(kind, "cancelled", time.perf_counter() - start)
        return Outcome(kind, "unexpected", 0, why=f"{kind}: timed out")
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return Outcome(kind, "unexpected", 0, why=f"{kind}: {type(exc).__name__}: {exc}")


def start_server(model: Path, max_batch: int, max_queue: int, device: str | None):
    """``(process, url)``: diffutron_serve.serve in a process of its own, once it is ready."""
    from diffutron_serve.background import free_port

    port = free_port()
    options = {"max_batch": max_batch, "max_queue": max_queue, "device": device}
    code = (
        "import sys, json; from diffutron_serve import serve; "
        "serve(sys.argv[1], port=int(sys.argv[2]), drain_timeout=30, **json.loads(sys.argv[3]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(model), str(port), json.dumps(options)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server was not ready after 300 s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]


def soak(
    model: Path,
    *,
    requests: int,
    concurrency: int,
    max_batch: int = 16,
    span: tuple[int, int] = (4, 32),
    device: str | None = None,
    seed: int = 0,
) -> dict:
    """Runs the soak and returns its figures (see the module's doc)."""
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=requests)
    process, url = start_server(model, max_batch, 4 * concurrency, device)
    try:
        name = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
        for i in range(4):  # warm-up
            one(url, name, "chat", 10**9 + i, span)
        rss = {"start": rss_mib(process.pid)}
        done = [0]
        lock = threading.Lock()

        def run(i: int) -> Outcome:
            outcome = one(url, name, kinds[i], seed * 1_000_003 + i, span)
            with lock:
                done[0] += 1
                if done[0] == min(500, requests):
                    rss["after 500"] = rss_mib(process.pid)
            return outcome

        begin = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            outcomes = list(pool.map(run, range(requests)))
        wall = time.perf_counter() - begin
        time.sleep(1)  # abandoned requests leave the batch
        rss["end"] = rss_mib(process.pid)
        idle = httpx.get(f"{url}/metrics", timeout=30).text
    finally:
        process.terminate()
        code = process.wait(timeout=60)
    ok = [o for o in outcomes if o.status == "ok"]
    unexpected = [o for o in outcomes if o.status == "unexpected"]
    active = next(
        (
            float(line.split()[-1])
            for line in idle.splitlines()
            if line.startswith("diffutron_active_rows ")
        ),
        float("nan"),
    )
    return {
        "requests": requests,
        "wall": wall,
        "counts": {
            s: sum(o.status == s for o in outcomes)
            for s in ("ok", "expected", "cancelled", "unexpected")
        },
        "unexpected": [o.why for o in unexpected],
        "latency": [percentile([o.seconds for o in ok], q) for q in (50, 95, 99)],
        "first": [
            percentile([o.first for o in ok if o.first is not None], q) for q in (50, 95, 99)
        ],
        "tokens_per_s": sum(o.tokens for o in ok) / wall,
        "rss": rss,
        "active_after": active,
        "exit_code": code,
    }


def steady(
    model: Path, max_batch: int, device: str | None, max_tokens: int = 32, rounds: int = 3
) -> tuple[float, float]:
    """benchmarks/serve_load.py's comparison at 16 clients, ``rounds`` times, each the clients
    (4 greedy chat requests each, on a server in this process) and then the same 64 requests as
    one offline batch through the engine while the server idles, so both see the same machine:
    ``(server tokens/s, offline tokens/s)``, pooled over the rounds."""
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from serve_load import offline, run_level

    from diffutron_serve import create_app, serve_in_thread

    texts = [PROMPTS[i % len(PROMPTS)] for i in range(64)]
    batch = max(16, max_batch)
    app = create_app(str(model), max_batch=batch, max_queue=64, device=device)
    running = serve_in_thread(app, timeout=120)
    served = [0, 0.0]
    alone = [0, 0.0]
    try:
        url = f"{running.url}/v1"
        name = httpx.get(f"{url}/models", timeout=30).json()["data"][0]["id"]
        run_level(url, name, texts, 16, 1, max_tokens, 600)  # warm-up
        for _ in range(rounds):
            results, seconds = run_level(url, name, texts, 16, 4, max_tokens, 600)
            served[0] += sum(r.tokens for r in results if r.error is None)
            served[1] += seconds
            with torch.no_grad():
                tokens, offline_s, _ = offline(app.state.server, texts, max_tokens, batch)
            alone[0] += tokens
            alone[1] += offline_s
    finally:
        running.stop(timeout=30)
    return served[0] / served[1], alone[0] / alone[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/demo/sft/model"))
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-tokens", default="4,32", help="the range max_tokens is drawn from")
    parser.add_argument("--device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-steady", action="store_true")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        parser.error(f"no model at {args.model}: run `uv run diffutron demo` or pass --model DIR")
    low, high = (int(v) for v in args.max_tokens.split(","))
    figures = soak(
        args.model,
        requests=args.requests,
        concurrency=args.concurrency,
        max_batch=args.max_batch,
        span=(low, high),
        device=args.device,
        seed=args.seed,
    )
    counts = figures["counts"]
    print(
        f"{figures['requests']} requests from {args.concurrency} clients in {figures['wall']:.0f} s"
    )
    print(f"outcomes: {counts}")
    print(f"unexpected failures: {counts['unexpected']}")
    for why in figures["unexpected"][:10]:
        print(f"  {why}")
    p = figures["latency"]
    t = figures["first"]
    print(f"latency p50/p95/p99: {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} s")
    print(f"time to first token (streams) p50/p95/p99: {t[0]:.2f} / {t[1]:.2f} / {t[2]:.2f} s")
    print(f"generated tokens/s: {figures['tokens_per_s']:.1f}")
    rss = figures["rss"]
    print("server RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    if "after 500" in rss:
        print(f"RSS at the end / after 500 requests: {rss['end'] / rss['after 500']:.3f}")
    active, code = figures["active_after"], figures["exit_code"]
    print(f"active rows after the soak: {active:.0f}; the server exited with {code}")
    if not args.no_steady:
        served, alone = steady(args.model, args.max_batch, args.device)
        print(
            f"16-client steady state: server {served:.1f} tokens/s, offline batch {alone:.1f} "
            f"tokens/s: {served / alone:.0%}"
        )


if __name__ == "__main__":
    main()
