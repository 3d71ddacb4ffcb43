"""The declared API: the OpenAPI document lists every route and diffusion field; capabilities a
diffusion answer cannot deliver are refused by name, never silently ignored; the smaller parts
of the protocol (one model by id, HEAD, 405 with Allow, a max_tokens beyond any model)."""

from __future__ import annotations

import httpx
import openai
import pytest

from diffutron_serve.schema import Diffusion

from .test_metrics import scrape, value
from .test_production import served

ROUTES = {
    "/v1/models": {"get"},
    "/v1/models/{model_id}": {"get"},
    "/v1/chat/completions": {"post"},
    "/v1/completions": {"post"},
    "/health": {"get"},
    "/ready": {"get"},
    "/metrics": {"get"},
}


@pytest.fixture(scope="module")
def name(client):
    return client.models.list().data[0].id


def test_the_openapi_document_lists_every_route_and_extra_field(server):
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert {p: set(m) for p, m in document["paths"].items()} == ROUTES
    schemas = document["components"]["schemas"]
    extras = set(Diffusion.model_fields)
    assert {"steps", "block_length", "threshold", "remasking", "cfg_scale"} <= extras
    assert {"repetition_penalty", "cache", "cache_interval", "canvas"} <= extras
    for name in ("ChatRequest", "CompletionRequest"):
        assert extras <= set(schemas[name]["properties"]), name
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/ChatRequest")
    assert "Message" in schemas  # the $defs of the request models are components too
    page = httpx.get(f"{server.url}/docs", timeout=10)
    assert page.status_code == 200 and "openapi.json" in page.text


def test_the_openapi_document_needs_the_key_when_there_is_one(model_dir):
    running = served(model_dir, api_key="sk-local-test")
    try:
        for path in ("/openapi.json", "/docs"):
            assert httpx.get(f"{running.url}{path}", timeout=10).status_code == 401
        keyed = {"authorization": "Bearer sk-local-test"}
        assert httpx.get(f"{running.url}/openapi.json", headers=keyed, timeout=10).is_success
    finally:
        running.stop()


CHAT_REFUSED = [
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"}, "tools"),
    ({"tools": [{"type": "function"}], "tool_choice": "required"}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
    ({"n": 2}, "n"),
]
COMPLETION_REFUSED = [
    ({"echo": True}, "echo"),
    ({"best_of": 2}, "best_of"),
    ({"logprobs": 1}, "logprobs"),
]
ACCEPTED = [
    {"logprobs": False},
    {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"},
    {"response_format": {"type": "text"}},
    {"top_p": 1, "presence_penalty": 0, "frequency_penalty": 0, "user": "u", "n": 1},
]


@pytest.mark.parametrize(("extra", "field"), CHAT_REFUSED)
def test_a_chat_capability_that_cannot_be_delivered_is_a_400_naming_it(server, name, extra, field):
    base = {"model": name, "messages": [{"role": "user", "content": "merhaba"}]}
    answer = httpx.post(f"{server.url}/v1/chat/completions", json={**base, **extra}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field and field in answer.json()["error"]["message"]


@pytest.mark.parametrize(("extra", "field"), COMPLETION_REFUSED)
def test_a_completion_capability_that_cannot_be_delivered_is_a_400_naming_it(
    server, name, extra, field
):
    base = {"model": name, "prompt": "kedi", "max_tokens": 4}
    answer = httpx.post(f"{server.url}/v1/completions", json={**base, **extra}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field


@pytest.mark.parametrize("extra", ACCEPTED)
def test_what_clients_send_by_default_is_accepted(server, name, extra):
    base = {"model": name, "messages": [{"role": "user", "content": "merhaba"}]}
    answer = httpx.post(
        f"{server.url}/v1/chat/completions", json={**base, **extra, "max_tokens": 4}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def test_max_tokens_beyond_any_model_is_context_length_exceeded(server, name):
    base = {"model": name, "messages": [{"role": "user", "content": "merhaba"}]}
    for name in ("max_tokens", "max_completion_tokens"):
        answer = httpx.post(
            f"{server.url}/v1/chat/completions", json={**base, name: 10**9}, timeout=30
        )
        error = answer.json()["error"]
        assert answer.status_code == 400 and error["code"] == "context_length_exceeded"
        assert error["param"] == name and name in error["message"]


def test_one_model_by_id_head_and_405_with_allow(server, client, name):
    assert client.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")
    for path in ("/v1/models", "/health", "/ready", "/metrics", f"/v1/models/{name}", "/"):
        head = httpx.head(f"{server.url}{path}", timeout=10)
        assert head.status_code == 200 and head.content == b"", path
    wrong = httpx.get(f"{server.url}/v1/chat/completions", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["error"]["code"] == "invalid_request"


def test_cache_none_turns_a_servers_default_cache_off(model_dir):
    running = served(model_dir, sampler={"cache": "dual"})
    body = {"model": model_dir.name, "prompt": "kedi", "max_tokens": 16}
    try:
        for cache, grows in (("none", False), (None, False), ("dual", True)):
            before = value(scrape(running.url), "diffutron_cache_refreshes_total")
            answer = httpx.post(
                f"{running.url}/v1/completions", json={**body, "cache": cache}, timeout=60
            )
            assert answer.status_code == 200, answer.text
            after = value(scrape(running.url), "diffutron_cache_refreshes_total")
            assert (after > before) == grows, cache
    finally:
        running.stop()


def test_a_setting_the_sampler_refuses_names_its_field(server, name):
    base = {"model": name, "messages": [{"role": "user", "content": "merhaba"}]}
    for extra, field in (
        ({"steps": 3, "max_tokens": 16, "block_length": 8}, "steps"),
        ({"threshold": 2.0}, "threshold"),
        ({"remasking": "entropy"}, "remasking"),
    ):
        answer = httpx.post(f"{server.url}/v1/chat/completions", json={**base, **extra}, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == field, answer.text
