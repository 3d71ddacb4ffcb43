"""Delayed caching (docs/sampling.md#delayed-caching): a committed column of the active block is
computed once more, in the pass after its commit, then read from the cache. At drift 0 it is the
uncached sampler exactly; each cached pass computes exactly the columns not yet settled; what it
stores is what the column computes (a one-layer model, whose keys and values depend on the
column alone, answers as without it); a batch gives each request what it gives alone."""

import pytest
import torch

from diffutron_sample import Execution, SampleError, SamplerConfig
from diffutron_sample.kvslots import BlockCache
from diffutron_sample.layers import run_layers
from diffutron_sample.refresh import advance_span

from .conftest import assert_batched_as_alone, generate_alone, random_prompts, tiny_model

CONFIG = SamplerConfig(steps=24, max_new_tokens=48, block_length=16)


def prompts(lengths, seed=0):
    return random_prompts(lengths, seed)


def run(model, prompt, config, bucketed=False):
    # bucketed: the compiled step's padded shapes (run eagerly), whose stores are copies
    execution = Execution(compile=True, compiler=run_layers) if bucketed else None
    return generate_alone(model, prompt, config, execution)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("rule", [{}, {"threshold": 0.5}])
def test_delayed_at_drift_zero_is_the_uncached_sampler_exactly(windowed, mode, rule):
    config = CONFIG.replace(**rule)
    for prompt in prompts([12, 30]):
        plain, _ = run(windowed, prompt, config)
        cached = config.replace(cache=mode, cache_drift=0.0, cache_delayed=True)
        assert torch.equal(run(windowed, prompt, cached)[0], plain)


def test_each_cached_pass_computes_the_columns_not_yet_settled(windowed):
    # 8 passes a block, 2 commits a pass: pass k >= 1 reads the 2 (k - 1) columns committed
    # before the last pass from the cache and computes the other 16 - 2 (k - 1)
    prompt = prompts([20])[0]
    fixed = CONFIG.replace(cache="dual")
    _, plain = run(windowed, prompt, fixed)
    _, delayed = run(windowed, prompt, fixed.replace(cache_delayed=True))
    per_block = sum(16 - 2 * (k - 1) for k in range(1, 8))
    saved = plain.positions_run - delayed.positions_run
    assert saved == CONFIG.num_blocks * (7 * 16 - per_block)
    assert delayed.forward_passes == plain.forward_passes == CONFIG.steps


@pytest.mark.parametrize("bucketed", [False, True])
@pytest.mark.parametrize("rule", [{}, {"threshold": 0.5}])
def test_what_it_stores_is_what_the_column_computes(rule, bucketed):
    # one layer: a column's keys and values depend on its own token and place alone, so a
    # settled column read from the cache is the column computed afresh (in the cache buffer
    # in place, or in a bucketed step's copy)
    shallow = tiny_model(5, max_positions=256, layers=1)
    config = CONFIG.replace(cache="dual", **rule)
    for prompt in prompts([12, 30], seed=2):
        delayed, lm = run(shallow, prompt, config.replace(cache_delayed=True), bucketed)
        assert torch.equal(delayed, run(shallow, prompt, config)[0])
        assert (lm.layers is not None) is bucketed


@pytest.mark.parametrize("refresh", ["fixed", "adaptive"])
def test_a_delayed_batch_gives_each_request_what_it_gives_alone(windowed, refresh):
    config = CONFIG.replace(cache="dual", cache_refresh=refresh, cache_delayed=True, threshold=0.5)
    assert_batched_as_alone(windowed, prompts([12, 30, 21], seed=1), config)


def test_a_column_settles_one_pass_after_its_commit_and_a_new_block_forgets():
    store = BlockCache(own=torch.zeros(1))
    span = advance_span(store, "dual", None, (10, 20), 0, 30, delayed=True)
    assert span.refresh and span.skip == frozenset()  # the block's first pass
    store.block = 0
    store.unsettled |= {12, 15}  # committed by that pass
    assert advance_span(store, "dual", None, (10, 20), 0, 30, delayed=True).skip == frozenset()
    store.unsettled |= {11}
    span = advance_span(store, "dual", None, (10, 20), 0, 30, delayed=True)
    assert span.skip == {12, 15} and not span.refresh
    assert advance_span(store, "dual", None, (10, 20), 0, 30).skip is None  # not delayed
    span = advance_span(store, "dual", None, (20, 30), 1, 30, delayed=True)
    assert span.refresh and span.skip == frozenset() and not store.settled


def test_cache_delayed_is_a_switch():
    with pytest.raises(SampleError, match="cache_delayed must be true or false"):
        CONFIG.replace(cache_delayed="yes please")
    assert CONFIG.with_text(cache_delayed="true").cache_delayed is True
