"""Learning the commit policy (docs/sampling.md#learned-policy): the traces label what the
reference finally commits, the fit refuses too little data in one line, and the policy lands in
the model folder beside the user's files, owned and whole."""

import json

import pytest
import torch

from diffutron_sample import CommitPolicy, SamplerConfig, prompt_ids
from diffutron_sample.learned import POLICY_CARD, POLICY_WEIGHTS
from diffutron_train.errors import TrainError
from diffutron_train.policy import Traces, collect, fit, trace_config, train_policy

PROMPTS = ["merhaba", "bugün hava çok güzel", "kedi ve köpek", "ev okul su çay", "bir iki üç"]
DEFAULTS = SamplerConfig(steps=4, max_new_tokens=16, block_length=8, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def tiny():
    from diffutron_data import load_tokenizer
    from diffutron_train import build_model, model_config

    tokenizer = load_tokenizer("tiny")
    shape = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2}
    config = model_config("tiny", vocab_size=len(tokenizer), initializer_range=0.3, **shape)
    return build_model(config, seed=0).eval(), tokenizer


def test_the_traces_label_the_step_each_final_token_was_proposed(tiny):
    model, tokenizer = tiny
    config = trace_config(DEFAULTS)
    assert (config.steps, config.temperature, config.rule, config.cache) == (16, 0.0, None, None)
    traces = collect(model, tokenizer, PROMPTS, config)
    assert traces.features.shape == (len(traces.labels), 6)
    positions = len(PROMPTS) * config.max_new_tokens  # every new position, masked at first
    first_step = traces.features[:, 3] == 0  # block_filled: nothing of the block committed yet
    assert int(first_step.sum()) == positions  # each block's first step logs its every position
    # one token a step: each position is logged every step until its commit, the last time
    # with its final token, so every position has at least one true label
    assert int(traces.labels.sum()) >= positions
    assert 0 < float(traces.labels.float().mean()) < 1
    assert set(traces.prompts.tolist()) == set(range(len(PROMPTS)))
    for prompt in PROMPTS:  # the prompts were read as chats
        assert len(prompt_ids(tokenizer, prompt)) > 2


def test_too_little_to_learn_from_is_one_line():
    few = Traces(torch.zeros(50, 6), torch.ones(50, dtype=torch.bool), torch.zeros(50))
    with pytest.raises(TrainError, match="50 logged positions are too few, nothing") as caught:
        fit(few)
    assert "\n" not in str(caught.value)
    same = Traces(torch.zeros(500, 6), torch.ones(500, dtype=torch.bool), torch.zeros(500))
    with pytest.raises(TrainError, match="500 logged positions are all final"):
        fit(same)


def test_train_policy_writes_a_policy_that_loads_and_never_touches_the_model(tiny, tmp_path):
    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    info = train_policy(tmp_path, model, tokenizer, PROMPTS * 4, DEFAULTS, precision=0.9)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == [POLICY_CARD, POLICY_WEIGHTS]
    card = json.loads((tmp_path / POLICY_CARD).read_text())
    assert card["prompts"] == 20 and card["positions"] == info["positions"] > 100
    assert 0.5 <= card["cutoff"] < 1 and card["trace_sampler"]["steps"] == 16
    policy = CommitPolicy.load(tmp_path, tokenizer)
    assert policy.cutoff == pytest.approx(info["cutoff"])
    again = train_policy(tmp_path, model, tokenizer, PROMPTS * 4, DEFAULTS, seed=1, precision=0.9)
    assert json.loads((tmp_path / POLICY_CARD).read_text())["seed"] == again["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(after)  # no temporary left


def test_a_foreign_policy_file_stops_the_work_before_it_starts(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny
    (tmp_path / POLICY_WEIGHTS).write_bytes(b"someone else's")
    monkeypatch.setattr(
        "diffutron_train.policy.collect", lambda *a, **k: pytest.fail("work started")
    )
    with pytest.raises(Exception, match="is not a commit policy Diffutron wrote"):
        train_policy(tmp_path, model, tokenizer, PROMPTS, DEFAULTS)
    assert (tmp_path / POLICY_WEIGHTS).read_bytes() == b"someone else's"


def test_a_target_no_cut_off_reaches_is_said_with_what_was_measured():
    from diffutron_train.policy import choose_cutoff

    probs = torch.full((10,), 0.9999)
    labels = torch.tensor([True, False] * 5)
    cutoff, found = choose_cutoff(probs, labels, 0.99)
    assert cutoff == pytest.approx(0.999) and found["reached"] is False
    assert found["precision"] == pytest.approx(0.5) and found["recall"] == pytest.approx(1.0)
    probs = torch.linspace(0.5, 1.0, 10)
    cutoff, found = choose_cutoff(probs, probs > 0.7, 0.99)
    assert found["reached"] and found["precision"] == 1.0 and probs[3] < cutoff <= probs[4]
