"""One request can never take the server down: a field torch would reject is a 400, a request
whose step fails ends alone, and an engine that died says so (503) instead of hanging."""

import json
import threading

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import start_server


def post(server, payload, path="/v1/chat/completions"):
    return httpx.post(f"{server.url}{path}", json=payload, timeout=60)


def chat(name, content="merhaba", **extra):
    return {"model": name, "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize("seed", [2**64, -1, 10**30])
def test_a_seed_torch_cannot_take_is_a_400_and_the_next_request_is_answered(server, client, seed):
    name = client.models.list().data[0].id
    response = post(server, chat(name, seed=seed, temperature=0.7, max_tokens=8))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "seed" and "[0, 2**64 - 1]" in error["message"], error
    largest = chat(name, seed=2**64 - 1, temperature=0.7, max_tokens=8)
    assert post(server, largest).status_code == 200
    assert post(server, chat(name, max_tokens=8)).status_code == 200


NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, 1e308, -1e308, 1e-320]),
)
FIELDS = [
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "steps",
    "block_length",
    "threshold",
    "cfg_scale",
    "repetition_penalty",
    "cache_interval",
    "n",
]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(field=st.sampled_from(FIELDS), value=NUMBERS)
def test_any_number_in_any_field_is_answered_and_the_server_stays_up(server, field, value):
    name = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"][0]["id"]
    extra = {"max_tokens": 8, field: value}
    if field == "cache_interval":
        extra["cache"] = "dual"
    response = post(server, chat(name, **extra))
    assert response.status_code in (200, 400, 404), (field, value, response.text)
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(f"{server.url}/v1/models", timeout=10).status_code == 200


def test_a_failure_injected_into_one_requests_step_ends_that_request_only(model_dir):
    from diffutron_serve import create_app

    app = create_app(str(model_dir), max_batch=8)
    running, stop = start_server(app)
    worker = app.state.server.worker
    poison = worker.tokenizer.convert_tokens_to_ids("balık")
    runner = worker.engine.runner
    real = runner.execute

    def execute(plan):
        if any(poison in r.canvas.tolist() for r in plan.requests):
            raise RuntimeError("injected failure")
        return real(plan)

    try:
        name = httpx.get(f"{running.url}/v1/models").json()["data"][0]["id"]
        good = chat(name, "kedi ve köpek", max_tokens=16)
        alone = post(running, good).json()["choices"][0]["message"]["content"]
        runner.execute = execute
        results = {}

        def send(key, payload):
            results[key] = post(running, payload)

        threads = [
            threading.Thread(target=send, args=("bad", chat(name, "balık", max_tokens=16))),
            *(threading.Thread(target=send, args=(i, good)) for i in range(3)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bad = results.pop("bad")
        assert bad.status_code == 500 and "injected failure" in bad.json()["error"]["message"]
        for response in results.values():
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == alone
        assert post(running, good).json()["choices"][0]["message"]["content"] == alone
    finally:
        stop()


def test_a_dead_engine_answers_503_everywhere_and_never_hangs(model_dir):
    from diffutron_serve import create_app

    app = create_app(str(model_dir))
    running, stop = start_server(app)
    worker = app.state.server.worker
    try:
        name = httpx.get(f"{running.url}/v1/models").json()["data"][0]["id"]

        def broken():
            raise RuntimeError("the scheduler broke")

        worker.engine.scheduler.schedule = broken
        first = post(running, chat(name, max_tokens=8))
        assert first.status_code == 500 and "the scheduler broke" in first.text, first.text
        worker.thread.join(timeout=10)
        assert not worker.thread.is_alive()
        for response in (
            httpx.get(f"{running.url}/v1/models", timeout=10),
            post(running, chat(name, max_tokens=8)),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "engine_dead"
            assert "the scheduler broke" in json.dumps(response.json())
    finally:
        stop()
