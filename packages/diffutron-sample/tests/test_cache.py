"""The block cache (docs/sampling.md#block-cache): right after a refresh, a cached step's logits
at the rows it recomputes are the full forward's; generation with it is batch-independent, falls
back on models it cannot run, and takes its settings from every entry point."""

import logging

import pytest
import torch

from diffutron_sample import Engine, MaskedLM, SampleError, SamplerConfig, cache, generate, infill
from diffutron_sample.cache import BlockCache, Span, cached_states

from .conftest import EOS, MASK, PAD, VOCAB, tiny_model

WINDOW = 8  # tiny_model's local_attention 16: each local layer sees |i - j| <= 8


def _batch(lengths, seed=0):
    """Left-padded random canvases of ``lengths`` (each longer than the local window)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD)
    keys = torch.zeros(len(lengths), width, dtype=torch.bool)
    for row, length in enumerate(lengths):
        ids[row, width - length :] = torch.randint(5, VOCAB, (length,), generator=g)
        keys[row, width - length :] = True
    return ids, keys, (keys.long().cumsum(1) - 1).clamp(min=0)


def _logits(model, states):
    return model.decoder(model.head(states))


@pytest.fixture(scope="module")
def windowed():
    model = tiny_model(3, max_positions=256)
    assert set(model.config.layer_types) == {"full_attention", "sliding_attention"}
    assert model.config.sliding_window == WINDOW
    return model


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_a_cached_step_right_after_a_refresh_gives_the_full_forwards_logits(windowed, mode):
    lengths = [70, 45, 58]  # batched prompts of different lengths, all far beyond the window
    ids, keys, positions = _batch(lengths)
    width = ids.shape[1]
    with torch.no_grad():
        full = windowed(input_ids=ids, attention_mask=keys, position_ids=positions).logits
        stores = [BlockCache() for _ in lengths]
        refreshed = cached_states(
            windowed,
            ids,
            keys,
            positions,
            [Span(s, 0, n, True) for s, n in zip(stores, lengths, strict=True)],
        )
        torch.testing.assert_close(_logits(windowed, refreshed)[keys], full[keys])
        # the third block of 16 of each canvas (not the first), then what follows it in prefix mode
        spans = [
            Span(s, n - 32, n if mode == "prefix" else n - 16, False)
            for s, n in zip(stores, lengths, strict=True)
        ]
        cached = _logits(windowed, cached_states(windowed, ids, keys, positions, spans))
    for row, (span, length) in enumerate(zip(spans, lengths, strict=True)):
        columns = slice(width - length + span.start, width - length + span.end)
        torch.testing.assert_close(cached[row, columns], full[row, columns])
        assert span.end - span.start == (32 if mode == "prefix" else 16)


def test_the_local_layers_window_is_what_the_cache_reproduces(windowed):
    """The canvases are long enough that attending beyond the window changes the logits: the
    equality above holds because the cache applies the local layers' window, not by luck."""
    ids, keys, positions = _batch([70])
    with torch.no_grad():
        full = windowed(input_ids=ids, attention_mask=keys, position_ids=positions).logits
        windowed.config.sliding_window = 10_000  # every layer global
        try:
            wide = cached_states(windowed, ids, keys, positions, [Span(BlockCache(), 0, 70, True)])
        finally:
            windowed.config.sliding_window = WINDOW
    assert not torch.allclose(_logits(windowed, wide), full, atol=1e-3)


def test_mixed_rows_refresh_and_reuse_in_one_pass(windowed):
    ids, keys, positions = _batch([70, 45, 58], seed=1)
    width = ids.shape[1]
    with torch.no_grad():
        full = windowed(input_ids=ids, attention_mask=keys, position_ids=positions).logits
        stores = [BlockCache() for _ in range(3)]
        cached_states(windowed, ids, keys, positions, [Span(s, 0, 0, True) for s in stores])
        spans = [
            Span(BlockCache(), 0, 0, True),
            Span(stores[1], 20, 40, False),
            Span(stores[2], 26, 58, False),
        ]
        out = _logits(windowed, cached_states(windowed, ids, keys, positions, spans))
    torch.testing.assert_close(out[0][keys[0]], full[0][keys[0]])
    torch.testing.assert_close(
        out[1, width - 45 + 20 : width - 5], full[1, width - 45 + 20 : width - 5]
    )
    torch.testing.assert_close(out[2, width - 58 + 26 :], full[2, width - 58 + 26 :])
    assert spans[0].store.kv is not None and spans[0].store.kv.shape[3] == 70


def _prompts(lengths, seed=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, VOCAB, (n,), generator=g) for n in lengths]


def _generate(model, prompt, config):
    return generate(model, prompt[None], config, mask_token_id=MASK, eos_token_id=EOS)[0]


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_one_step_per_block_is_exact_every_step_being_a_refresh(windowed, mode):
    config = SamplerConfig(steps=3, max_new_tokens=48, block_length=16)
    prompt = _prompts([30])[0]
    plain = _generate(windowed, prompt, config)
    lm = MaskedLM(windowed)
    assert torch.equal(_generate(lm, prompt, config.replace(cache=mode)), plain)
    assert lm.positions_run == lm.positions_full  # every pass was a full (refresh) pass


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_cached_generation_computes_fewer_positions_and_ignores_its_batch(windowed, mode):
    config = SamplerConfig(steps=24, max_new_tokens=48, block_length=16, cache=mode)
    prompts = _prompts([12, 30, 21])
    lm = MaskedLM(windowed)
    engine = Engine(lm, MASK, EOS, PAD)
    for row, prompt in enumerate(prompts):
        engine.add(row, prompt, config)
    with torch.enable_grad():  # as in the server's engine thread
        while engine.busy:
            engine.step()
    for row, prompt in enumerate(prompts):  # each request gives alone what it gave in the batch
        assert torch.equal(engine.output(row), _generate(windowed, prompt, config))
    stored = [r.caches["cond"].kv for r in engine.requests.values()]
    assert all(kv is not None and kv.grad_fn is None for kv in stored)  # steps run without grad
    ratio = lm.positions_run / lm.positions_full
    assert ratio < (0.6 if mode == "prefix" else 0.45), ratio
    assert all(r.caches["cond"].kv is not None for r in engine.requests.values())


def test_refresh_interval_adds_full_passes_inside_a_block(windowed):
    config = SamplerConfig(steps=24, max_new_tokens=48, block_length=16, cache="dual")
    prompt = _prompts([20])[0]
    counts = {}
    for interval in (None, 1, 3):
        lm = MaskedLM(windowed)
        _generate(lm, prompt, config.replace(cache_interval=interval))
        counts[interval] = lm.positions_run
    # 8 steps per block: a refresh at its start only, every other step, or every fourth step
    assert counts[None] < counts[3] < counts[1]


def test_guidance_and_infilling_run_with_the_cache(windowed):
    config = SamplerConfig(steps=8, max_new_tokens=32, block_length=16, cfg_scale=1.5)
    prompt = _prompts([24])[0]
    lm = MaskedLM(windowed)
    out = _generate(lm, prompt, config.replace(cache="dual"))
    assert lm.positions_run < lm.positions_full and not bool((out == MASK).any())
    text = torch.cat([prompt, torch.full((8,), MASK), prompt[:10], torch.full((8,), MASK)])
    filled = infill(windowed, text[None], config.replace(cache="prefix"), mask_token_id=MASK)[0]
    assert not bool((filled == MASK).any())
    assert torch.equal(filled[text != MASK], text[text != MASK])


def test_a_model_without_cache_support_generates_without_it_and_says_so_once(caplog, monkeypatch):
    from transformers import BertConfig, BertForMaskedLM

    monkeypatch.setattr(cache, "_WARNED", set())

    torch.manual_seed(0)
    bert = BertForMaskedLM(
        BertConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
    ).eval()
    config = SamplerConfig(steps=8, max_new_tokens=16, block_length=8)
    prompt = _prompts([6])[0]
    with caplog.at_level(logging.WARNING, logger="diffutron_sample.cache"):
        first = _generate(bert, prompt, config.replace(cache="dual"))
        _generate(bert, prompt, config.replace(cache="prefix"))
    assert torch.equal(first, _generate(bert, prompt, config))
    said = [r.getMessage() for r in caplog.records if "block cache" in r.getMessage()]
    assert len(said) == 1 and "ModernBERT model, not bert" in said[0]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"cache": "full"}, "unknown cache 'full'"),
        ({"cache": "dual", "cache_interval": 0}, "cache_interval must be"),
        ({"cache_interval": 2.5}, "cache_interval must be"),
    ],
)
def test_bad_cache_settings_are_one_line(changes, words):
    with pytest.raises(SampleError, match=words) as caught:
        SamplerConfig(**changes)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_one_layer_stays_exact_after_the_block_changes(mode):
    """A one-layer model's keys and values depend on the tokens alone: once the active block's
    tokens change (as commits change them), a cached step still gives the full forward's logits
    at the rows it recomputes, so the cached step attends to the right stored columns."""
    model = tiny_model(4, max_positions=256)
    model.model.layers = model.model.layers[:1]
    model.config.num_hidden_layers, model.config.layer_types = 1, model.config.layer_types[:1]
    lengths = [70, 45, 58]
    ids, keys, positions = _batch(lengths, seed=3)
    width = ids.shape[1]
    with torch.no_grad():
        stores = [BlockCache() for _ in lengths]
        cached_states(model, ids, keys, positions, [Span(s, 0, 0, True) for s in stores])
        changed = ids.clone()
        for row in range(len(lengths)):  # new tokens in each row's active block
            changed[row, width - 32 : width - 16] = torch.randint(5, VOCAB, (16,))
        spans = [
            Span(s, n - 32, n if mode == "prefix" else n - 16, False)
            for s, n in zip(stores, lengths, strict=True)
        ]
        full = model(input_ids=changed, attention_mask=keys, position_ids=positions).logits
        cached = _logits(model, cached_states(model, changed, keys, positions, spans))
        stale = model(input_ids=ids, attention_mask=keys, position_ids=positions).logits
    for row, (span, length) in enumerate(zip(spans, lengths, strict=True)):
        columns = slice(width - length + span.start, width - length + span.end)
        torch.testing.assert_close(cached[row, columns], full[row, columns])
        assert not torch.allclose(full[row, columns], stale[row, columns])
