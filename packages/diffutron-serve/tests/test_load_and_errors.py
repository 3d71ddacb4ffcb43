"""Many clients at once get what each gets alone; every malformed request gets a 4xx in the
OpenAI error format and the server answers on; a full queue says 429; a client that leaves
frees its slot."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import start_server

PROMPTS = ["merhaba", "kedi nasıl ?", "bir iki üç", "deniz ve dağ", "evet hayır ?", "su çay ekmek"]


def ask(client, name, i):
    return (
        client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            max_tokens=8 + 8 * (i % 2),
            temperature=0,
        )
        .choices[0]
        .message.content
    )


def test_32_requests_from_8_threads_each_equal_the_request_alone(client):
    name = client.models.list().data[0].id
    alone = {i: ask(client, name, i) for i in range(12)}  # every distinct request, one at a time

    def later(i):
        time.sleep(0.01 * (i % 7))  # arrivals spread over the engine's steps
        return i, ask(client, name, i % 12)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(later, range(32)))
    assert len(answers) == 32
    for i, answer in answers:
        assert answer == alone[i % 12], i


def body(**changes):
    data = {"model": "MODEL", "messages": [{"role": "user", "content": "merhaba"}]}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


CASES = [
    ("not JSON", "{not json", 400, "not valid JSON"),
    ("a list", "[1, 2]", 400, "must be a JSON object"),
    ("no model", body(model=...), 400, "'model' is required"),
    ("unknown model", body(model="gpt-9"), 404, "does not exist"),
    ("messages not a list", body(messages="merhaba"), 400, "'messages' must be"),
    ("a bad role", body(messages=[{"role": "robot", "content": "x"}]), 400, "role"),
    ("temperature text", body(temperature="hot"), 400, "'temperature' must be a number"),
    ("max_tokens zero", body(max_tokens=0), 400, "'max_tokens' must be at least 1"),
    ("does not fit", body(max_tokens=500), 400, "the model has 96"),
    ("stop of numbers", body(stop=[1, 2]), 400, "'stop' must be"),
    ("n of two", body(n=2), 400, "only n=1"),
    ("steps not whole blocks", body(steps=3), 400, "steps"),
    ("threshold above one", body(threshold=2.0), 400, "threshold"),
    ("an unknown cache", body(cache="full"), 400, "unknown cache 'full'"),
    ("cache_interval zero", body(cache="dual", cache_interval=0), 400, "cache_interval"),
    ("infinite penalty", '{"model":"MODEL","messages":[],"repetition_penalty":1e999}', 400, ""),
    ("text with a lone surrogate", body(messages=[{"role": "user", "content": "\ud800"}]), 400, ""),
    ("block_length zero", body(block_length=0), 400, "'block_length' must be at least 1"),
    (
        "over a megabyte",
        body(messages=[{"role": "user", "content": "a " * 600_000}]),
        413,
        "1048576",
    ),
]


@pytest.mark.parametrize(("case", "payload", "status", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_request_gets_its_status_and_an_openai_error(
    server, client, case, payload, status, words
):
    name = client.models.list().data[0].id
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=payload.replace("MODEL", name),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"], error
    assert httpx.get(f"{server.url}/v1/models", timeout=10).status_code == 200


def test_null_means_not_set_and_a_bad_suffix_is_refused(server, client):
    name = client.models.list().data[0].id
    nulls = body(temperature=None, seed=None, stream=None, n=None, steps=None, stop=None)
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=nulls.replace("MODEL", name),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    suffix = {"model": name, "prompt": "kedi", "suffix": "\ud800", "max_tokens": 4}
    bad = httpx.post(
        f"{server.url}/v1/completions",
        content=json.dumps(suffix),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "suffix", bad.text


def test_unknown_paths_and_methods_answer_in_the_same_format(server):
    missing = httpx.get(f"{server.url}/v1/engines", timeout=10)
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(f"{server.url}/v1/chat/completions", timeout=10)
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_a_client_that_leaves_mid_stream_frees_its_slot(server, client):
    name = client.models.list().data[0].id
    request = {
        "model": name,
        "messages": [{"role": "user", "content": "merhaba"}],
        "stream": True,
        "canvas": True,
        "max_tokens": 64,
        "steps": 64,
    }
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=request, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                assert "canvas" in json.loads(line[6:])
                break  # leave after the first step
    worker = server.app.state.server.worker
    deadline = time.monotonic() + 10
    while worker.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.active  # the engine dropped it at its next step
    assert ask(client, name, 0)  # and answers on


def test_a_wrong_or_missing_api_key_is_401(model_dir):
    from diffutron_serve import create_app

    running, stop = start_server(create_app(str(model_dir), api_key="sk-local-test"))
    try:
        for headers in ({}, {"authorization": "Bearer sk-wrong"}):
            response = httpx.get(f"{running.url}/v1/models", headers=headers, timeout=10)
            assert (
                response.status_code == 401
                and response.json()["error"]["code"] == "invalid_api_key"
            )
        good = httpx.get(
            f"{running.url}/v1/models", headers={"authorization": "Bearer sk-local-test"}
        )
        assert good.status_code == 200
    finally:
        stop()


def test_a_full_queue_answers_429_and_the_rest_complete(model_dir):
    from diffutron_serve import create_app

    running, stop = start_server(create_app(str(model_dir), max_batch=1, max_queue=1))
    name = httpx.get(f"{running.url}/v1/models").json()["data"][0]["id"]
    request = {
        "model": name,
        "messages": [{"role": "user", "content": "merhaba"}],
        "max_tokens": 64,
        "steps": 64,
    }
    statuses = []

    def post():
        response = httpx.post(f"{running.url}/v1/chat/completions", json=request, timeout=60)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["type"] == "rate_limit_error"

    try:
        threads = [threading.Thread(target=post) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop()
    assert 429 in statuses and statuses.count(200) >= 2, statuses
