"""``GET /metrics``: Prometheus's text format, read back with prometheus_client's own parser,
whose counters grow by exactly the requests made."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .test_production import served


def scrape(url, headers=None):
    response = httpx.get(f"{url}/metrics", headers=headers or {}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def test_the_counters_grow_by_exactly_the_requests_made(model_dir):
    running = served(model_dir)
    url, name = running.url, model_dir.name
    try:
        before = scrape(url)
        generated = 0
        for _ in range(5):
            body = {
                "model": name,
                "messages": [{"role": "user", "content": "merhaba"}],
                "max_tokens": 8,
            }
            reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
            generated += reply["usage"]["completion_tokens"]
        stream = {"model": name, "prompt": "kedi", "max_tokens": 8, "stream": True}
        with httpx.stream("POST", f"{url}/v1/completions", json=stream, timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith("data: {") and '"usage"' in line:
                    generated += json.loads(line[6:])["usage"]["completion_tokens"]
        bad = httpx.post(f"{url}/v1/chat/completions", json={"model": name}, timeout=60)
        assert bad.status_code == 400
        after = scrape(url)
    finally:
        running.stop()

    def grew(metric, **labels):
        return value(after, metric, **labels) - value(before, metric, **labels)

    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert grew("diffutron_requests_total", status=200, **chat) == 5
    assert grew("diffutron_requests_total", status=400, **chat) == 1
    completions = {"route": "/v1/completions", "method": "POST", "status": 200}
    assert grew("diffutron_requests_total", **completions) == 1
    assert grew("diffutron_requests_total", route="/metrics", method="GET", status=200) == 1
    assert grew("diffutron_generated_tokens_total") == generated > 0
    assert grew("diffutron_time_to_first_token_seconds_count") == 6
    assert grew("diffutron_request_seconds_count") == 6
    steps = grew("diffutron_step_seconds_count")
    assert steps > 0 and grew("diffutron_forward_passes_total") == steps  # one pass a step
    assert value(after, "diffutron_queue_length") == 0
    assert value(after, "diffutron_active_rows") == 0
    assert value(after, "diffutron_cache_refreshes_total") == 0  # no request asked for a cache


def test_the_cache_refreshes_are_counted(model_dir):
    running = served(model_dir, sampler={"cache": "dual"})
    try:
        body = {"model": model_dir.name, "prompt": "kedi", "max_tokens": 16}
        assert httpx.post(f"{running.url}/v1/completions", json=body, timeout=60).is_success
        samples = scrape(running.url)
    finally:
        running.stop()
    assert value(samples, "diffutron_cache_refreshes_total") == 2  # one per block of 8


def test_metrics_need_the_key_unless_public(model_dir):
    for public in (False, True):
        running = served(model_dir, api_key="sk-local-test", metrics_public=public)
        try:
            bare = httpx.get(f"{running.url}/metrics", timeout=10)
            assert bare.status_code == (200 if public else 401)
            scrape(running.url, {"authorization": "Bearer sk-local-test"})
        finally:
            running.stop()
