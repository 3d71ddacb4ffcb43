"""The adaptive refresh of the block cache (docs/sampling.md#adaptive-refresh): at drift 0 it is
the uncached sampler exactly; a looser bound refreshes less, never below the block starts; a row
computed again in full is counted; its settings are one line when wrong."""

import pytest
import torch

from diffutron_sample import SampleError, SamplerConfig
from diffutron_sample.refresh import WATCHED, refresh_of, watched

from .conftest import assert_batched_as_alone, generate_alone, random_prompts

CONFIG = SamplerConfig(steps=24, max_new_tokens=48, block_length=16)


def prompts(lengths, seed=0):
    return random_prompts(lengths, seed)


def run(model, prompt, config):
    return generate_alone(model, prompt, config)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("rule", [{}, {"threshold": 0.5}])
def test_adaptive_at_drift_zero_is_the_uncached_sampler_exactly(windowed, mode, rule):
    config = CONFIG.replace(**rule)
    for prompt in prompts([12, 30]):
        plain, _ = run(windowed, prompt, config)
        cached, lm = run(windowed, prompt, config.replace(cache=mode, cache_drift=0.0))
        assert torch.equal(cached, plain)
        assert lm.refreshes >= lm.forward_passes  # every pass ended as a full one


def test_a_looser_bound_refreshes_less_but_at_every_block_start(windowed):
    prompt = prompts([20])[0]
    refreshes = {}
    for drift in (0.0, 0.05, 1000.0):
        _, lm = run(windowed, prompt, CONFIG.replace(cache="dual", cache_drift=drift))
        refreshes[drift] = lm.refreshes
        assert lm.forward_passes == CONFIG.steps
    assert refreshes[1000.0] == CONFIG.num_blocks  # never drifts that far: block starts only
    assert refreshes[1000.0] <= refreshes[0.05] <= refreshes[0.0]
    assert refreshes[1000.0] < refreshes[0.0]


def test_an_adaptive_batch_gives_each_request_what_it_gives_alone(windowed):
    config = CONFIG.replace(cache="dual", cache_refresh="adaptive", cache_drift=0.05)
    assert_batched_as_alone(windowed, prompts([12, 30, 21], seed=1), config)


def test_the_watched_columns_flank_the_block_inside_the_canvas():
    assert watched(10, 20, 40) == (*range(10 - WATCHED, 10), *range(20, 20 + WATCHED))
    assert watched(2, 20, 22) == (0, 1, 20, 21)


def test_which_refresh_a_config_asks_for():
    assert refresh_of(CONFIG) == (None, None)
    assert refresh_of(CONFIG.replace(cache="dual")) == ("fixed", None)  # as it always was
    assert refresh_of(CONFIG.replace(cache="dual", cache_refresh="adaptive"))[0] == "adaptive"
    assert refresh_of(CONFIG.replace(cache="dual", cache_drift=0.3)) == ("adaptive", 0.3)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"cache_refresh": "sometimes"}, "unknown cache_refresh 'sometimes'"),
        ({"cache": "dual", "cache_drift": -1.0}, "cache_drift must be"),
        ({"cache": "dual", "cache_drift": float("nan")}, "cache_drift must be"),
        ({"cache": "dual", "cache_refresh": "fixed", "cache_drift": 0.1}, "drop one of them"),
    ],
)
def test_bad_refresh_settings_are_one_line(changes, words):
    with pytest.raises(SampleError, match=words) as caught:
        CONFIG.replace(**changes)
    assert "\n" not in str(caught.value)


def test_refresh_settings_read_from_text():
    config = CONFIG.with_text(cache="dual", cache_refresh="adaptive", cache_drift="0.2")
    assert (config.cache_refresh, config.cache_drift) == ("adaptive", 0.2)
