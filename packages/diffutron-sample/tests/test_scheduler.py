"""The scheduler and runner: host reads per step do not grow with the batch; a request whose
pass fails ends alone; early stop and mixed commit rules work for every row at once."""

import contextlib

import pytest
import torch

from diffutron_sample import Engine, SamplerConfig
from diffutron_sample.runner import end_early, select_commits

from .conftest import EOS, MASK, PAD

SYNCS = ("item", "tolist", "__bool__", "nonzero", "__int__", "__float__", "__index__", "argwhere")


@contextlib.contextmanager
def counted_syncs():
    """Count every call that reads a tensor's values back to the host."""
    counts = {name: 0 for name in SYNCS}
    saved = {name: getattr(torch.Tensor, name) for name in SYNCS}

    def wrap(name):
        original = saved[name]

        def call(self, *args, **kwargs):
            counts[name] += 1
            return original(self, *args, **kwargs)

        return call

    for name in SYNCS:
        setattr(torch.Tensor, name, wrap(name))
    real_nonzero = torch.nonzero

    def nonzero(*args, **kwargs):
        counts["nonzero"] += 1
        return real_nonzero(*args, **kwargs)

    torch.nonzero = nonzero
    try:
        yield counts
    finally:
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)
        torch.nonzero = real_nonzero


CONFIGS = {
    "reference": SamplerConfig(steps=16, max_new_tokens=16, block_length=8),
    "threshold": SamplerConfig(steps=16, max_new_tokens=16, block_length=8, threshold=0.5),
    "penalty and guidance": SamplerConfig(
        steps=16, max_new_tokens=16, block_length=8, repetition_penalty=1.2, cfg_scale=0.5
    ),
    "dual cache": SamplerConfig(steps=16, max_new_tokens=16, block_length=8, cache="dual"),
    "early stop": SamplerConfig(steps=16, max_new_tokens=16, block_length=8, early_stop=True),
}


def syncs_of_one_step(model, config, requests: int) -> dict[str, int]:
    engine = Engine(model, MASK, EOS, PAD)
    for i in range(requests):
        prompt = [2, 5 + i % 7, 9, 11 + i % 5][: 2 + i % 3]  # prompts of different lengths
        engine.add(i, prompt, config)
    engine.step()  # the first step of the first block (the cache's refresh)
    engine.step()
    with counted_syncs() as counts:
        engine.step()  # mid-block: the steps that run most
    return counts


@pytest.mark.parametrize("name", list(CONFIGS))
def test_host_reads_per_step_do_not_grow_with_the_batch(model, name):
    one = syncs_of_one_step(model, CONFIGS[name], 1)
    many = syncs_of_one_step(model, CONFIGS[name], 32)
    assert many == one, (name, one, many)
    assert sum(one.values()) <= 8, one  # a handful per step, whatever the batch


def test_a_request_whose_pass_fails_ends_alone_and_the_others_finish_as_alone(model):
    config = CONFIGS["reference"]
    prompts = {"a": [2, 7, 9], "poison": [2, 30, 31, 32], "b": [2, 11]}
    alone = {}
    for key in ("a", "b"):
        engine = Engine(model, MASK, EOS, PAD)
        engine.add(key, prompts[key], config)
        while engine.busy:
            engine.step()
        alone[key] = engine.pop(key).canvas.tolist()

    engine = Engine(model, MASK, EOS, PAD)
    real = engine.runner.execute

    def execute(plan):
        if any(r.id == "poison" for r in plan.requests):
            raise RuntimeError("injected")
        return real(plan)

    engine.runner.execute = execute
    for key, prompt in prompts.items():
        engine.add(key, prompt, config)
    errors = {}
    while engine.busy:
        for event in engine.step():
            if event.error is not None:
                errors[event.id] = event.error
    assert errors == {"poison": "injected"}
    for key in ("a", "b"):
        assert engine.pop(key).canvas.tolist() == alone[key], key


def test_a_row_whose_logits_are_not_finite_fails_and_the_rest_go_on(model, monkeypatch):
    import diffutron_sample.runner as runner_module

    engine = Engine(model, MASK, EOS, PAD)
    engine.add("ok", [2, 7, 9], CONFIGS["reference"])
    engine.add("nan", [2, 8, 8, 8, 8], CONFIGS["reference"])
    real = runner_module.propose

    def poisoned(lm, batch, **kwargs):  # the second row's logits come out NaN
        scores, chosen, finite = real(lm, batch, **kwargs)
        return scores, chosen, finite & torch.tensor([True, False])

    monkeypatch.setattr(runner_module, "propose", poisoned)
    events = engine.step()
    monkeypatch.undo()
    failed = {e.id: e.error for e in events if e.error}
    assert list(failed) == ["nan"] and "not finite" in failed["nan"]
    assert MASK in engine.requests["nan"].canvas.tolist()  # nothing of it was committed
    while engine.busy:
        engine.step()
    assert MASK not in engine.pop("ok").canvas.tolist()


def test_commits_mix_counts_and_thresholds_in_one_selection():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.5, float("-inf")],
            [0.2, 0.3, 0.1, 0.25],
            [float("-inf")] * 4,
        ],
        dtype=torch.float64,
    )
    counts = torch.tensor([2, 0, 1])
    thresholds = torch.tensor([float("nan"), 0.9, 0.5], dtype=torch.float64)
    commit = select_commits(scores, counts, thresholds)
    assert commit.tolist() == [
        [True, False, True, False],  # the two best
        [False, True, False, False],  # none reaches 0.9: the best alone
        [False, False, False, False],  # nothing can be chosen
    ]


def test_rule_rows_select_the_same_without_the_sort():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        rows, width = 6, 9
        levels = torch.tensor([float("-inf"), 0.1, 0.3, 0.3, 0.6, 0.9, 0.95], dtype=torch.float64)
        scores = levels[torch.randint(len(levels), (rows, width), generator=generator)]
        scores[0] = float("-inf")  # a row with nothing to choose
        thresholds = levels[torch.randint(1, len(levels), (rows,), generator=generator)]
        thresholds[1] = float("inf")  # a rule other than the confidence's
        accepted = torch.rand(rows, width, generator=generator) < 0.2
        counts = torch.zeros(rows, dtype=torch.long)
        for given in (None, accepted):
            sorted_ = select_commits(scores, counts, thresholds, given)
            assert torch.equal(
                select_commits(scores, counts, thresholds, given, counted=False), sorted_
            )
        best = select_commits(scores, counts, torch.full((rows,), float("inf")), counted=False)
        assert best[1:].sum(dim=1).tolist() == [1] * (rows - 1)  # one best, even on ties


def test_early_stop_pads_what_follows_a_committed_end_only_when_nothing_before_is_masked():
    M, E, P = MASK, EOS, PAD
    canvas = torch.tensor([[7, 8, E, M, M], [7, M, E, M, M], [7, 8, E, M, M]])
    answer = torch.tensor([[False, True, True, True, True]] * 3)
    stops = torch.tensor([True, True, False])
    out, ended = end_early(
        canvas, answer, stops, torch.tensor([E, P]), mask_token_id=M, pad_token_id=P
    )
    assert ended.tolist() == [True, False, False]
    assert out.tolist() == [[7, 8, E, P, P], [7, M, E, M, M], [7, 8, E, M, M]]
