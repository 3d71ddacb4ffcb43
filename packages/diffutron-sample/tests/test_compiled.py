"""The compiled step (docs/sampling.md#compiled-step): bucketed static shapes change no token,
the layers compile as one graph, and wherever compiling cannot run, generation runs eagerly and
says so once."""

import logging

import pytest
import torch

from diffutron_sample import Execution, MaskedLM, SamplerConfig, compiled, generate
from diffutron_sample.cache import BlockCache, Buckets, Span, cached_states, run_layers

from .conftest import EOS, MASK, PAD, VOCAB, tiny_model

CONFIG = SamplerConfig(steps=8, max_new_tokens=32, block_length=16)


@pytest.fixture
def fresh_model():
    return tiny_model(3, max_positions=256)


def _prompts(lengths=(20, 9, 14)):
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(5, VOCAB, (n,), generator=g) for n in lengths]
    width = max(lengths)
    ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row, prompt in enumerate(rows):
        ids[row, width - len(prompt) :], mask[row, width - len(prompt) :] = prompt, True
    return ids, mask


def _compiled(model, compiler=None) -> MaskedLM:
    """``model`` run with the compiled step (``compiler`` in place of torch.compile's)."""
    return MaskedLM(model, execution=Execution(compile=True, compiler=compiler))


def _generate(model, config):
    ids, mask = _prompts()
    return generate(model, ids, config, mask_token_id=MASK, eos_token_id=EOS, attention_mask=mask)


def test_bucketed_shapes_give_the_same_states(fresh_model):
    ids, keys = _prompts((70, 45, 58))
    positions = (keys.long().cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        stores = [BlockCache() for _ in range(3)]
        full = cached_states(
            fresh_model, ids, keys, positions, [Span(s, 0, 0, True) for s in stores]
        )
        spans = [Span(stores[0], 0, 0, True), Span(stores[1], 13, 29, False)]
        spans.append(Span(stores[2], 26, 58, False))
        plain = cached_states(fresh_model, ids, keys, positions, spans)
        shaped = cached_states(
            fresh_model, ids, keys, positions, spans, buckets=Buckets(64, batch=True)
        )
    torch.testing.assert_close(shaped, plain)
    assert torch.count_nonzero(plain.abs().sum(-1)) == 70 + 16 + 32 and full.shape == plain.shape


def test_the_compiled_step_sees_only_bucketed_shapes_and_changes_no_token(fresh_model):
    expected = {c: _generate(fresh_model, CONFIG.replace(cache=c)) for c in (None, "dual")}
    shapes, kept = [], {}

    def recording(model, ids, keys, positions, columns, kv, keep):
        shapes.append((ids.shape, columns.shape))
        kept[cache] = kept.get(cache, False) or keep
        return run_layers(model, ids, keys, positions, columns, kv, keep)

    lm = _compiled(fresh_model, recording)
    assert lm.layers is not None
    for cache, tokens in expected.items():
        assert torch.equal(_generate(lm, CONFIG.replace(cache=cache)), tokens)
    assert shapes and all(
        ids[0] & (ids[0] - 1) == 0 and ids[1] % 64 == 0 and columns[1] % 16 == 0
        for ids, columns in shapes
    )
    assert kept == {None: False, "dual": True}  # keys and values come back only to be stored
    assert (torch.Size([4, 64]), torch.Size([4, 64])) in shapes  # the three prompts, uncached


def test_a_failing_compiled_step_falls_back_for_good_and_says_so_once(
    fresh_model, caplog, monkeypatch
):
    monkeypatch.setattr(compiled, "_SAID", set())
    expected = _generate(fresh_model, CONFIG)
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("no triton here\nsecond line")

    lm = _compiled(fresh_model, broken)
    with caplog.at_level(logging.WARNING, logger="diffutron_sample.compiled"):
        assert torch.equal(_generate(lm, CONFIG), expected)
        assert torch.equal(_generate(lm, CONFIG), expected)
    said = [r.getMessage() for r in caplog.records]
    assert len(calls) == 1 and len(said) == 1 and "no triton here" in said[0]
    assert lm.layers.buckets == Buckets()  # eager: no padding
    assert "second line" not in said[0]


def test_compile_off_cuda_is_said_once_and_changes_nothing(fresh_model, caplog, monkeypatch):
    monkeypatch.setattr(compiled, "_SAID", set())
    before = dict(vars(fresh_model))
    with caplog.at_level(logging.WARNING, logger="diffutron_sample.compiled"):
        assert _compiled(fresh_model).layers is None
        assert _compiled(fresh_model).layers is None
    assert dict(vars(fresh_model)) == before  # nothing attached to the Hugging Face module
    said = [r.getMessage() for r in caplog.records]
    assert said == ["the compiled step runs on CUDA only, not cpu: running the step eagerly"]


def test_a_compiled_call_raises_the_recompile_limit_only_while_it_runs(fresh_model):
    limits = {}
    before = torch._dynamo.config.cache_size_limit

    def recording(*args):
        limits["inside"] = torch._dynamo.config.cache_size_limit
        return run_layers(*args)

    _generate(_compiled(fresh_model, recording), CONFIG)
    assert limits["inside"] >= compiled.GRAPHS
    assert torch._dynamo.config.cache_size_limit == before  # the process's setting is back


def test_the_layers_compile_as_one_graph(fresh_model):
    """``fullgraph=True``: any graph break would be an error. The graph is captured by dynamo and
    AOT autograd and run by ``aot_eager``, which needs no C++ compiler: inductor's CPU backend
    generates code that fails to build under ``ATEN_CPU_CAPABILITY=default`` (a torch bug; the
    step then falls back, as the test above shows), and a test must hold on every CPU setting.
    The compiled step gives the eager tokens."""
    config = CONFIG.replace(cache="dual")
    expected = _generate(fresh_model, config)
    compiled_layers = torch.compile(run_layers, backend="aot_eager", dynamic=False, fullgraph=True)
    lm = _compiled(fresh_model, compiled_layers)
    assert torch.equal(_generate(lm, config), expected)
    assert lm.layers.failed is None
