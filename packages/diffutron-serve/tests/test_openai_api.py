"""The server driven by the official openai client: chat and completions, streamed and not,
suffix infilling, seeds, and answers equal to diffutron-sample's."""

import openai
import pytest
import torch

from diffutron_sample import SamplerConfig, generate_texts, load_model

PROMPT = "merhaba kedi nasıl ?"


@pytest.fixture(scope="module")
def model_name(client):
    return client.models.list().data[0].id


def test_models_lists_the_served_model(client, model_dir):
    models = client.models.list().data
    assert [m.id for m in models] == [model_dir.name]


def test_greedy_chat_equals_the_library_and_streaming_equals_it_too(client, model_name, model_dir):
    reply = client.chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": PROMPT}], temperature=0
    )
    model, tokenizer = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    config = SamplerConfig.from_pretrained(model_dir)
    (expected,) = generate_texts(model, tokenizer, [PROMPT], config)
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and reply.usage.total_tokens >= reply.usage.prompt_tokens
    chunks = list(
        client.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": PROMPT}],
            temperature=0,
            stream=True,
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == expected
    assert chunks[-1].choices[0].finish_reason == reply.choices[0].finish_reason


def test_completions_streamed_and_not_agree(client, model_name):
    plain = client.completions.create(model=model_name, prompt="bir iki", max_tokens=8)
    streamed = client.completions.create(
        model=model_name, prompt="bir iki", max_tokens=8, stream=True
    )
    text = "".join(c.choices[0].text for c in streamed)
    assert text == plain.choices[0].text
    assert plain.usage.completion_tokens <= 8


def test_suffix_fills_the_gap_between_prompt_and_suffix(client, model_name):
    reply = client.completions.create(
        model=model_name, prompt="kedi ve", suffix="çay içer .", max_tokens=4
    )
    assert reply.choices[0].text is not None
    assert reply.usage.completion_tokens <= 4


def test_a_seed_repeats_a_sampled_answer(client, model_name):
    def ask(seed):
        return (
            client.chat.completions.create(
                model=model_name,
                messages=[{"role": "user", "content": PROMPT}],
                temperature=1.0,
                seed=seed,
                extra_body={"remasking": "random"},
            )
            .choices[0]
            .message.content
        )

    assert ask(3) == ask(3)
    assert len({ask(s) for s in range(5)}) > 1  # sampling does sample


def test_diffusion_settings_are_extra_fields(client, model_name):
    reply = client.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=16,
        extra_body={"steps": 4, "block_length": 8, "threshold": 0.9},
    )
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_the_block_cache_is_an_extra_field(client, model_name):
    """One step per block: every cached step is a refresh, so the answer is the uncached one."""

    def ask(**extra):
        return client.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=16,
            extra_body={"steps": 2, "block_length": 8, **extra},
        )

    plain = ask().choices[0].message.content
    for mode in ("prefix", "dual"):
        assert ask(cache=mode).choices[0].message.content == plain
    assert ask(cache=None, cache_interval=2).choices[0].message.content == plain


def _streamed(client, kind, request):
    """The text and finish reason of a streamed request, its deltas joined."""
    if kind == "chat":
        stream = client.chat.completions.create(**request, stream=True)
        parts = [(c.choices[0].delta.content or "", c.choices[0].finish_reason) for c in stream]
    else:
        stream = client.completions.create(**request, stream=True)
        parts = [(c.choices[0].text or "", c.choices[0].finish_reason) for c in stream]
    return "".join(p for p, _ in parts), [r for _, r in parts if r][-1]


def _whole(client, kind, request):
    if kind == "chat":
        choice = client.chat.completions.create(**request).choices[0]
        return choice.message.content, choice.finish_reason
    choice = client.completions.create(**request).choices[0]
    return choice.text, choice.finish_reason


def test_streamed_text_equals_the_non_streamed_text_over_200_sampled_requests(client):
    from concurrent.futures import ThreadPoolExecutor

    name = client.models.list().data[0].id
    words = ["merhaba", "kedi nasıl ?", "bir iki üç", "deniz ve dağ", "[/Answer] evet"]

    def request(i):
        kind = "chat" if i % 2 else "text"
        base = {
            "model": name,
            "max_tokens": 1 + i % 6,
            "temperature": 1.5,
            "seed": i,
            "extra_body": {"block_length": 4},
        }
        if i % 5 == 0:
            base["stop"] = ["ev", "a"]
        if kind == "chat":
            base["messages"] = [{"role": "user", "content": words[i % len(words)]}]
        else:
            base["prompt"] = words[i % len(words)]
        return kind, base

    def both(i):
        kind, body = request(i)
        return i, _streamed(client, kind, body), _whole(client, kind, body)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(both, range(200)))
    differ = [(i, s, w) for i, s, w in results if s != w]
    assert not differ, differ[:5]
    assert len({w for _, _, w in results}) > 20  # sampled: many different answers


def test_the_adaptive_refresh_is_an_extra_field(client, model_name):
    """At drift 0 every cached step is computed again in full: the uncached answer."""

    def ask(**extra):
        return client.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=16,
            extra_body={"steps": 16, "block_length": 8, **extra},
        )

    plain = ask().choices[0].message.content
    for mode in ("prefix", "dual"):
        exact = ask(cache=mode, cache_refresh="adaptive", cache_drift=0)
        assert exact.choices[0].message.content == plain
        exact = ask(cache=mode, cache_drift=0, cache_delayed=True)
        assert exact.choices[0].message.content == plain
    with pytest.raises(openai.BadRequestError) as caught:
        ask(cache="dual", cache_drift=-1)
    assert caught.value.body["param"] == "cache_drift"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(cache="dual", cache_delayed="sometimes")
    assert caught.value.body["param"] == "cache_delayed"


def test_a_requests_cache_alone_refreshes_adaptively():
    from diffutron_sample import SamplerConfig
    from diffutron_serve.requests import sampler_config
    from diffutron_serve.schema import CompletionRequest

    defaults = SamplerConfig(steps=16, max_new_tokens=16, block_length=8)
    asked = CompletionRequest(model="m", prompt="x", cache="dual")
    assert sampler_config(asked, defaults, 16).cache_refresh == "adaptive"
    fixed = CompletionRequest(model="m", prompt="x", cache="dual", cache_interval=2)
    assert sampler_config(fixed, defaults, 16).cache_refresh is None
    server_fixed = defaults.replace(cache="dual", cache_refresh="fixed")
    assert sampler_config(asked, server_fixed, 16).cache_refresh == "fixed"


def test_a_null_rule_asks_for_the_reference_whatever_the_models_rule():
    from diffutron_sample import SamplerConfig
    from diffutron_serve.requests import sampler_config
    from diffutron_serve.schema import CompletionRequest

    defaults = SamplerConfig(steps=16, max_new_tokens=16, block_length=8, entropy_bound=0.5)
    null = CompletionRequest(model="m", prompt="x", threshold=None)
    assert sampler_config(null, defaults, 16).rule is None
    other = CompletionRequest(model="m", prompt="x", margin_threshold=0.8)
    assert sampler_config(other, defaults, 16).rule == "margin_threshold"
    unset = CompletionRequest(model="m", prompt="x")
    assert sampler_config(unset, defaults, 16).rule == "entropy_bound"
