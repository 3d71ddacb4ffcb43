"""The commit policies beside the threshold (docs/sampling.md#commit-policies): each at its exact
limit is the reference sampler at one token per step, each loosened commits several tokens per
pass, and the dilated spread keeps one step's commits apart."""

import itertools
import math

import pytest
import torch

from diffutron_sample import Engine, MaskedLM, SampleError, SamplerConfig, generate
from diffutron_sample.commits import entropy_accepts, spread

from .conftest import EOS, MASK, PAD

PROMPTS = [[2, 10, 11, 12], [2, 20, 21], [2, 30, 31, 32, 33, 34]]
REFERENCE = SamplerConfig(steps=16, max_new_tokens=16, block_length=8)
LIMITS = {
    "threshold": 1.0,
    "entropy_bound": 0.0,
    "margin_threshold": 1.0,
    "kl_threshold": 0.0,
}
LOOSE = {
    "threshold": 0.05,
    "entropy_bound": 3.0,
    "margin_threshold": 0.02,
    "kl_threshold": 5.0,
}


def run(model, config, prompts=PROMPTS, **kwargs):
    counted = MaskedLM(model)
    ids = [
        generate(counted, torch.tensor([p]), config, mask_token_id=MASK, **kwargs)[0]
        for p in prompts
    ]
    return [row.tolist() for row in ids], counted.forward_passes


@pytest.mark.parametrize("rule", sorted(LIMITS))
@pytest.mark.parametrize("cache", [None, "dual"])
def test_each_rule_at_its_limit_is_the_reference_one_token_per_step(model, rule, cache):
    reference = REFERENCE.replace(cache=cache)
    expected, passes = run(model, reference)
    got, got_passes = run(model, reference.replace(**{rule: LIMITS[rule]}))
    assert got == expected
    assert got_passes == passes == 16 * len(PROMPTS)


@pytest.mark.parametrize("rule", sorted(LOOSE))
def test_each_loosened_rule_commits_several_tokens_per_pass(model, rule):
    got, passes = run(model, REFERENCE.replace(**{rule: LOOSE[rule]}))
    assert all(MASK not in row for row in got)
    assert passes < 16 * len(PROMPTS)


def test_dilation_one_is_off_and_a_dilated_schedule_keeps_its_step_count(model):
    config = REFERENCE.replace(steps=4)  # 4 tokens a pass, in two blocks of 8
    plain, passes = run(model, config)
    same, _ = run(model, config.replace(dilation=1))
    assert same == plain
    seen = []
    counted = MaskedLM(model)
    generate(
        counted,
        torch.tensor([PROMPTS[0]]),
        config.replace(dilation=2),
        mask_token_id=MASK,
        callback=lambda step, canvas: seen.append((canvas[0] == MASK).clone()),
    )
    assert counted.forward_passes * len(PROMPTS) == passes
    before = torch.ones_like(seen[0])
    before[: len(PROMPTS[0])] = False
    for step, masks in enumerate(seen):
        committed = (before & ~masks).nonzero()[:, 0].tolist()
        assert len(committed) == 4  # the schedule's count, topped up when spacing falls short
        if step % 2 == 0:  # a block's first pass: 4 of 8 masks can lie 2 apart
            assert all(b - a >= 2 for a, b in itertools.pairwise(committed)), committed
        before = masks


def test_spread_takes_the_best_first_keeps_them_apart_and_meets_a_count():
    scores = torch.tensor(
        [[0.9, 0.8, 0.7, 0.6, 0.5, float("-inf")], [0.1, 0.9, 0.8, 0.2, 0.3, 0.4]],
        dtype=torch.float64,
    )
    commit = torch.tensor([[True, True, True, False, False, False], [False] * 6])
    counts = torch.tensor([0, 4])
    dilation = torch.tensor([2, 3])
    counted = torch.tensor([False, True])
    got = spread(commit, scores, counts, dilation, counted, depth=6)
    assert got[0].tolist() == [True, False, True, False, False, False]  # a rule's picks, spaced
    # by count: 1 (0.9), then 4 (0.3, three away) spaced; topped up with 2 and 5 (0.8, 0.4)
    assert got[1].nonzero()[:, 0].tolist() == [1, 2, 4, 5]


def test_entropy_accepts_the_longest_prefix_under_the_bound():
    torch.manual_seed(0)
    scores = torch.rand(4, 7, dtype=torch.float64)
    entropy = torch.rand(4, 7, dtype=torch.float64) * 2
    bounds = torch.tensor([0.0, 0.5, 2.0, math.nan], dtype=torch.float64)
    got = entropy_accepts(scores, entropy, bounds)
    for row in range(4):
        order = scores[row].argsort(descending=True).tolist()
        want = set()
        for k in range(1, 8):
            spent = entropy[row, order[:k]]
            if not spent.sum() - spent.max() < bounds[row]:
                break
            want.add(order[k - 1])
        assert set(got[row].nonzero()[:, 0].tolist()) == want


def test_rules_in_one_batch_give_what_each_gives_alone(model):
    configs = [REFERENCE.replace(**{rule: LOOSE[rule]}) for rule in sorted(LOOSE)] + [REFERENCE]
    alone = {}
    for i, config in enumerate(configs):
        alone[i] = run(model, config, [PROMPTS[i % len(PROMPTS)]])[0][0]
    engine = Engine(model, MASK, EOS, PAD)
    for i, config in enumerate(configs):
        engine.add(i, PROMPTS[i % len(PROMPTS)], config)
    while engine.busy:
        engine.step()
    assert {i: engine.pop(i).canvas.tolist() for i in alone} == alone


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"threshold": 0.9, "entropy_bound": 1.0}, "threshold and entropy_bound are different"),
        ({"margin_threshold": 0.0}, "margin_threshold must be a number in (0, 1]"),
        ({"entropy_bound": -1.0}, "entropy_bound must be a number in [0, 1000.0]"),
        ({"kl_threshold": float("nan")}, "kl_threshold must be a finite number"),
        ({"dilation": 0}, "dilation must be a whole number in [1, 1000000]"),
        ({"policy": "oracle"}, "unknown policy 'oracle'"),
        ({"margin_threshold": 0.5, "remasking": "random"}, "ranks positions by confidence"),
    ],
)
def test_bad_policy_settings_are_one_line(changes, words):
    with pytest.raises(SampleError) as caught:
        REFERENCE.replace(**changes)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_settings_read_from_text():
    config = REFERENCE.with_text(entropy_bound="0.5", dilation="2", policy="none")
    assert (config.entropy_bound, config.dilation, config.policy) == (0.5, 2, None)
    assert config.rule == "entropy_bound"


def test_the_learned_policy_without_one_loaded_is_refused_in_one_line(model):
    engine = Engine(model, MASK, EOS, PAD)
    with pytest.raises(SampleError, match="train one with `diffutron-train policy"):
        engine.add("x", PROMPTS[0], REFERENCE.replace(policy="learned"))
