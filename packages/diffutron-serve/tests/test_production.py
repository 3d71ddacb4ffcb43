"""What a load balancer and an orchestrator rely on: the probes through a load, a failed load
and a drain; a drain on SIGTERM that finishes what is in flight; abandoned requests dropped;
only JSON bodies, and no cross-origin request without the key."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import build_model_dir

SLOW_STEP = 0.02  # seconds added to every engine step, so requests stay in flight a while


def slow_down(worker, seconds=SLOW_STEP):
    step = worker.engine.step

    def slow():
        time.sleep(seconds)
        return step()

    worker.engine.step = slow


def chat(url, name, *, tokens=16, steps=16, headers=None, timeout=60.0):
    request = {
        "model": name,
        "messages": [{"role": "user", "content": "merhaba"}],
        "max_tokens": tokens,
        "steps": steps,
    }
    return httpx.post(
        f"{url}/v1/chat/completions", json=request, headers=headers or {}, timeout=timeout
    )


def served(model_dir, **options):
    from diffutron_serve import create_app, serve_in_thread

    return serve_in_thread(create_app(str(model_dir), **options))


def test_the_probes_through_a_load(model_dir):
    from diffutron_serve import create_app, serve_in_thread

    app = create_app(str(model_dir), freeze_heap=True)  # as `serve` makes it
    server, release = app.state.server, threading.Event()
    load = server.loader
    server.loader = lambda: (release.wait(30), load())[1]
    gc.unfreeze()
    running = serve_in_thread(app, wait_loaded=False)
    try:
        health = httpx.get(f"{running.url}/health", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "loading"}
        assert httpx.get(f"{running.url}/ready", timeout=10).status_code == 503
        early = chat(running.url, model_dir.name)
        assert early.status_code == 503 and early.json()["error"]["code"] == "model_loading"
        assert gc.get_freeze_count() == 0
        release.set()
        assert server.loaded.wait(30)
        assert gc.get_freeze_count() > 0  # the loaded model is out of the collector's sight
        ready = httpx.get(f"{running.url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert chat(running.url, model_dir.name).status_code == 200
    finally:
        release.set()
        running.stop()
    assert gc.get_freeze_count() == 0  # given back when the engine stopped


def test_the_probes_after_a_failed_load(tmp_path):
    broken = build_model_dir(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    running = served(broken)
    try:
        health = httpx.get(f"{running.url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert str(broken) in health.json()["reason"]  # names what failed to load
        assert httpx.get(f"{running.url}/ready", timeout=10).status_code == 503
        refused = chat(running.url, "broken")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_load_failed"
    finally:
        running.stop()


def test_a_drain_finishes_what_is_in_flight_and_refuses_the_rest(model_dir):
    running = served(model_dir, max_batch=8)
    worker = running.app.state.server.worker
    slow_down(worker)
    name = model_dir.name
    try:
        with ThreadPoolExecutor(9) as pool:  # 8 clients and the drain
            flying = [pool.submit(chat, running.url, name, tokens=32, steps=32) for _ in range(8)]
            deadline = time.monotonic() + 10
            while len(worker.active) < 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(worker.active) == 8
            drained = pool.submit(running.app.state.server.drain, 30)
            time.sleep(0.1)
            assert httpx.get(f"{running.url}/ready", timeout=10).status_code == 503
            assert httpx.get(f"{running.url}/health", timeout=10).status_code == 200
            late = chat(running.url, name)
            assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
            assert [f.result().status_code for f in flying] == [200] * 8
            assert drained.result() == 0
    finally:
        running.stop()


def test_a_drain_that_times_out_ends_the_rest_with_a_503(model_dir):
    running = served(model_dir, max_batch=2)
    worker = running.app.state.server.worker
    slow_down(worker, 0.05)
    try:
        with ThreadPoolExecutor(4) as pool:
            flying = [
                pool.submit(chat, running.url, model_dir.name, tokens=64, steps=64)
                for _ in range(4)
            ]
            deadline = time.monotonic() + 10
            while len(worker.active) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert running.app.state.server.drain(0.2) == 4  # 2 in the batch, 2 waiting
            answers = [f.result() for f in flying]
        assert [a.status_code for a in answers] == [503] * 4
        assert {a.json()["error"]["code"] for a in answers} == {"shutting_down"}
    finally:
        running.stop()


SERVE = """
import sys, time
from diffutron_sample import Engine
step = Engine.step
def slow(self):
    time.sleep(0.02)
    return step(self)
Engine.step = slow
from diffutron_serve import serve
serve(sys.argv[1], port=int(sys.argv[2]), drain_timeout=60)
"""


def test_sigterm_with_8_requests_in_flight_answers_them_all_and_exits_0(model_dir):
    from diffutron_serve.background import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(model_dir), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        with ThreadPoolExecutor(8) as pool:
            flying = [pool.submit(chat, url, model_dir.name, tokens=64, steps=64) for _ in range(8)]
            time.sleep(0.5)  # all 8 admitted: 64 steps take over a second
            process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            late = chat(url, model_dir.name)
            assert late.status_code == 503, late.text
            assert late.json()["error"]["code"] == "shutting_down"
            statuses = [f.result().status_code for f in flying]
        assert statuses == [200] * 8
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("key", [None, "sk-local-test"])
def test_a_non_streamed_request_whose_client_leaves_frees_its_slot_within_a_second(model_dir, key):
    running = served(model_dir, api_key=key, max_batch=1, max_queue=0)
    worker = running.app.state.server.worker
    slow_down(worker, 0.05)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        with pytest.raises(httpx.ReadTimeout):
            chat(running.url, model_dir.name, tokens=64, steps=64, headers=headers, timeout=0.5)
        left = time.monotonic()
        while worker.active and time.monotonic() - left < 1.0:
            time.sleep(0.01)
        assert not worker.active, "the abandoned request still holds its slot"
        assert chat(running.url, model_dir.name, headers=headers).status_code == 200
    finally:
        running.stop()


def test_only_json_bodies_and_no_cross_origin_request_without_the_key(server, model_dir):
    body = json.dumps({"model": model_dir.name, "messages": [{"role": "user", "content": "x"}]})
    url = f"{server.url}/v1/chat/completions"
    plain = httpx.post(url, content=body, headers={"content-type": "text/plain"}, timeout=30)
    assert plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
    json_type = {"content-type": "application/json"}
    foreign = httpx.post(
        url, content=body, headers={**json_type, "origin": "http://evil.example"}, timeout=30
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_origin"
    host = server.url.removeprefix("http://")
    own = httpx.post(url, content=body, headers={**json_type, "origin": server.url}, timeout=30)
    assert own.status_code == 200, (host, own.text)


def test_a_cross_origin_request_with_the_key_is_served(model_dir):
    running = served(model_dir, api_key="sk-local-test")
    try:
        headers = {"origin": "http://app.example", "authorization": "Bearer sk-local-test"}
        assert chat(running.url, model_dir.name, headers=headers).status_code == 200
        assert httpx.get(f"{running.url}/health", timeout=10).status_code == 200  # no key
    finally:
        running.stop()


def test_an_answer_that_cannot_be_read_ends_that_request_alone(model_dir, monkeypatch):
    from diffutron_serve import answers

    advance = answers.Reader.advance

    def fragile(self, canvas, *, done, step=0):
        if self.job.max_tokens == 7:  # this request's answer breaks the reader
            raise RuntimeError("a tokenizer fault")
        return advance(self, canvas, done=done, step=step)

    monkeypatch.setattr(answers.Reader, "advance", fragile)
    running = served(model_dir)
    try:
        broken = chat(running.url, model_dir.name, tokens=7)
        assert (
            broken.status_code == 500 and "could not be read" in broken.json()["error"]["message"]
        )
        assert chat(running.url, model_dir.name, tokens=8).status_code == 200
        assert httpx.get(f"{running.url}/health", timeout=10).status_code == 200
        assert not running.app.state.server.worker.active
    finally:
        running.stop()


def test_a_client_that_leaves_is_counted_499_not_500(model_dir):
    from .test_metrics import scrape, value

    running = served(model_dir, max_batch=1)
    slow_down(running.app.state.server.worker, 0.05)
    try:
        with pytest.raises(httpx.ReadTimeout):
            chat(running.url, model_dir.name, tokens=64, steps=64, timeout=0.5)
        time.sleep(1.0)
        samples = scrape(running.url)
    finally:
        running.stop()
    route = {"route": "/v1/chat/completions", "method": "POST"}
    assert value(samples, "diffutron_requests_total", status=499, **route) == 1
    assert value(samples, "diffutron_requests_total", status=500, **route) == 0


def test_a_malformed_origin_or_a_rebound_name_is_another_origin(server, model_dir):
    body = {"model": model_dir.name, "messages": [{"role": "user", "content": "x"}]}
    url = f"{server.url}/v1/chat/completions"
    port = server.url.rsplit(":", 1)[1]
    for headers in (
        {"origin": "http://["},  # not a URL
        {"origin": f"http://rebound.example:{port}", "host": f"rebound.example:{port}"},
    ):
        answer = httpx.post(url, json=body, headers=headers, timeout=30)
        assert answer.status_code == 403, (headers, answer.text)
        assert answer.json()["error"]["code"] == "cross_origin"
    local = {"origin": f"http://localhost:{port}", "host": f"localhost:{port}"}
    assert httpx.post(url, json=body, headers=local, timeout=30).status_code == 200
