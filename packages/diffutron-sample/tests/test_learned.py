"""The learned commit policy (docs/sampling.md#learned-policy): its file is refused in one line
when missing, damaged or made for another tokenizer; a policy that calls nothing final is the
reference sampler; one that calls everything final still finishes a block before the next."""

import json
import logging

import pytest
import torch

from diffutron_sample import (
    CommitPolicy,
    MaskedLM,
    SampleError,
    SamplerConfig,
    find_commit_policy,
    generate,
    tokenizer_fingerprint,
)
from diffutron_sample.learned import POLICY_CARD, POLICY_WEIGHTS

from .conftest import MASK, word_tokenizer

PROMPTS = [[2, 10, 11, 12], [2, 20, 21]]
REFERENCE = SamplerConfig(steps=16, max_new_tokens=16, block_length=8)


def fixed_policy(final: bool) -> CommitPolicy:
    """A policy that calls every position final (or none): its last layer a constant logit."""
    torch.manual_seed(0)
    policy = CommitPolicy(hidden=4, cutoff=0.5)
    last = policy.net[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(30.0 if final else -30.0)
    return policy.eval()


def run(model, config, policy=None):
    counted = MaskedLM(model, commit_policy=policy)
    rows = [generate(counted, torch.tensor([p]), config, mask_token_id=MASK)[0] for p in PROMPTS]
    return [row.tolist() for row in rows], counted.forward_passes


@pytest.mark.parametrize("cache", [None, "dual"])
def test_a_policy_that_calls_nothing_final_is_the_reference(model, cache):
    expected, passes = run(model, REFERENCE.replace(cache=cache))
    found, learned_passes = run(
        model, REFERENCE.replace(cache=cache, policy="learned"), fixed_policy(False)
    )
    assert found == expected
    assert learned_passes == passes


def test_a_policy_that_calls_everything_final_takes_one_pass_per_block(model):
    expected, _ = run(model, REFERENCE)
    found, passes = run(model, REFERENCE.replace(policy="learned"), fixed_policy(True))
    blocks = REFERENCE.max_new_tokens // REFERENCE.block_length
    assert passes == blocks * len(PROMPTS)  # every block whole in one pass, one after another
    assert all(MASK not in row for row in found)
    assert found != expected  # it did commit in parallel: not the one-token-a-step answer


@pytest.fixture
def saved(tmp_path):
    tokenizer = word_tokenizer()
    policy = fixed_policy(True)
    policy.save(tmp_path, fingerprint=tokenizer_fingerprint(tokenizer), info={"seed": 0})
    return tmp_path, tokenizer, policy


def test_a_saved_policy_loads_as_it_was(saved):
    folder, tokenizer, policy = saved
    loaded = CommitPolicy.load(folder, tokenizer)
    features = torch.randn(5, len(json.loads((folder / POLICY_CARD).read_text())["features"]))
    assert torch.equal(loaded.accepts(features), policy.accepts(features))
    assert loaded.cutoff == policy.cutoff
    assert sorted(p.name for p in folder.iterdir()) == [POLICY_CARD, POLICY_WEIGHTS]


def _damage_weights(folder):
    data = bytearray((folder / POLICY_WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (folder / POLICY_WEIGHTS).write_bytes(bytes(data))


def _other_features(folder):
    card = json.loads((folder / POLICY_CARD).read_text())
    card["features"] = ["confidence"]
    (folder / POLICY_CARD).write_text(json.dumps(card))


DAMAGE = {
    "missing": (lambda f: (f / POLICY_WEIGHTS).unlink(), "has no learned commit policy"),
    "weights": (_damage_weights, "is damaged (its digest is not the one"),
    "card": (lambda f: (f / POLICY_CARD).write_text("{"), "commit_policy.json is damaged"),
    "foreign": (lambda f: (f / POLICY_CARD).write_text("{}"), "is not a Diffutron commit policy"),
    "features": (_other_features, "was written for other features"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_missing_or_damaged_policy_is_one_line(saved, damage, caplog):
    folder, tokenizer, _ = saved
    spoil, words = DAMAGE[damage]
    spoil(folder)
    with pytest.raises(SampleError) as caught:
        find_commit_policy(folder, tokenizer, required=True)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert "diffutron-train policy" in str(caught.value)
    with caplog.at_level(logging.WARNING):  # not asked for: the model still loads, and says why
        assert find_commit_policy(folder, tokenizer, required=False) is None
    assert words in caplog.text


def test_a_policy_for_another_tokenizer_is_refused(saved):
    folder, _, _ = saved
    other = word_tokenizer("eins zwei drei vier".split())
    with pytest.raises(SampleError, match="trained for another tokenizer") as caught:
        CommitPolicy.load(folder, other)
    assert "\n" not in str(caught.value)


def test_a_folder_without_a_policy_loads_none_unless_one_is_required(tmp_path):
    tokenizer = word_tokenizer()
    assert find_commit_policy(tmp_path, tokenizer, required=False) is None
    with pytest.raises(SampleError, match="has no learned commit policy"):
        find_commit_policy(tmp_path, tokenizer, required=True)
    with pytest.raises(SampleError, match="is not one; download the model"):
        find_commit_policy("org/hub-model", tokenizer, required=True)


def test_a_foreign_policy_file_is_never_replaced(tmp_path):
    precious = tmp_path / POLICY_CARD
    precious.write_text('{"mine": true}')
    with pytest.raises(SampleError, match="is not a commit policy Diffutron wrote"):
        fixed_policy(True).save(tmp_path, fingerprint="x", info={})
    assert precious.read_text() == '{"mine": true}'
    assert [p.name for p in tmp_path.iterdir()] == [POLICY_CARD]


def test_saving_again_replaces_our_own_policy_and_leaves_no_temporary_file(saved):
    folder, tokenizer, _ = saved
    fixed_policy(False).save(folder, fingerprint=tokenizer_fingerprint(tokenizer), info={})
    loaded = CommitPolicy.load(folder, tokenizer)
    assert not loaded.accepts(torch.zeros(3, len(loaded.net[0].weight[0]))).any()
    assert sorted(p.name for p in folder.iterdir()) == [POLICY_CARD, POLICY_WEIGHTS]


def test_the_policy_follows_its_features_to_their_device():
    policy = fixed_policy(True)
    features = torch.zeros(3, policy.net[0].in_features, device="meta")
    assert policy.accepts(features).device.type == "meta"  # a CUDA model's features likewise
