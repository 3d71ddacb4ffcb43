import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from diffutron_core import mc_loglikelihood, stratified_mask_counts

VOCAB, MASK = 7, 7  # ids 0..6 are words, 7 is the mask


class TinyMaskedLM(torch.nn.Module):
    """A deterministic toy masked LM whose logits depend on every token of the canvas."""

    def __init__(self, seed: int = 0, max_len: int = 16, dim: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.tok = torch.nn.Parameter(torch.randn(VOCAB + 1, dim, generator=g))
        self.pos = torch.nn.Parameter(torch.randn(max_len, dim, generator=g))
        self.mix = torch.nn.Parameter(torch.randn(dim, dim, generator=g))
        self.out = torch.nn.Parameter(torch.randn(dim, VOCAB, generator=g) * 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, T, V)
        h = self.tok[ids] + self.pos[: ids.shape[1]]
        h = torch.tanh(h + h.mean(1, keepdim=True) @ self.mix)
        return h @ self.out


def recording(fn):
    """Wrap a logits function so that every canvas it is called with is kept."""
    seen: list[torch.Tensor] = []

    def logits_fn(ids):
        seen.append(ids.clone())
        return fn(ids)

    return logits_fn, seen


def masked_ce(model, context, target, positions) -> float:
    """Sum of -log p(y_i | c, y with `positions` masked) over the masked positions."""
    canvas = torch.cat([context, target]).clone()
    for i in positions:
        canvas[len(context) + i] = MASK
    with torch.no_grad():
        logits = model(canvas[None])[0, len(context) :]
    return sum(F.cross_entropy(logits[i], target[i]).item() for i in positions)


def exact_bound_moments(model, context, target) -> tuple[float, float]:
    """Mean and variance of (L/l) * sum CE, l ~ U{1..L}, S a uniform l-subset: by enumeration."""
    length = len(target)
    values, weights = [], []
    for level in range(1, length + 1):
        subsets = list(itertools.combinations(range(length), level))
        for subset in subsets:
            values.append(length / level * masked_ce(model, context, target, subset))
            weights.append(1 / (length * len(subsets)))
    mean = sum(w * v for w, v in zip(weights, values, strict=True))
    var = sum(w * (v - mean) ** 2 for w, v in zip(weights, values, strict=True))
    return mean, var


@pytest.mark.parametrize("length", [2, 3])
def test_mc_mean_matches_the_enumerated_expectation(length):
    model = TinyMaskedLM()
    context = torch.tensor([1, 4])
    target = torch.tensor([3, 0, 5][:length])
    mean, var = exact_bound_moments(model, context, target)
    mc_num = 3000
    estimate = mc_loglikelihood(
        model,
        context,
        target,
        mask_token_id=MASK,
        mc_num=mc_num,
        batch_size=64,
        generator=torch.Generator().manual_seed(0),
    )
    assert estimate == pytest.approx(-mean, abs=5 * math.sqrt(var / mc_num))


def test_single_token_continuation_is_exact_in_one_forward_pass():
    model = TinyMaskedLM(seed=3)
    logits_fn, calls = recording(model)
    context, target = torch.tensor([2, 6, 1]), torch.tensor([4])
    got = mc_loglikelihood(logits_fn, context, target, mask_token_id=MASK, mc_num=128)
    assert len(calls) == 1 and calls[0].tolist() == [[2, 6, 1, MASK]]
    assert got == pytest.approx(-masked_ce(model, context, target, [0]), rel=1e-6)
    expected = torch.log_softmax(model(torch.tensor([[2, 6, 1, MASK]]))[0, 3], -1)[4].item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_context_is_never_masked_and_each_row_masks_one_to_L_positions():
    logits_fn, seen = recording(TinyMaskedLM(seed=5))
    context, target = torch.tensor([1, 2, 3]), torch.tensor([0, 4, 5, 6])
    mc_loglikelihood(
        logits_fn,
        context,
        target,
        mask_token_id=MASK,
        mc_num=100,
        batch_size=32,
        generator=torch.Generator().manual_seed(1),
    )
    canvases = torch.cat(seen)
    assert [len(c) for c in seen] == [32, 32, 32, 4]  # mc_num need not divide by batch_size
    assert (canvases[:, :3] == context).all()
    cont = canvases[:, 3:]
    assert ((cont == target) | (cont == MASK)).all()
    n_masked = (cont == MASK).sum(1)
    assert n_masked.min() >= 1 and n_masked.max() <= 4
    # stratification: in every full batch of 32 each level 1..4 appears exactly 8 times
    for batch in seen[:3]:
        levels = (batch[:, 3:] == MASK).sum(1)
        assert torch.bincount(levels, minlength=5)[1:].tolist() == [8, 8, 8, 8]


def test_mask_positions_are_uniform_within_a_level():
    logits_fn, seen = recording(lambda ids: torch.zeros(*ids.shape, VOCAB))
    mc_loglikelihood(
        logits_fn,
        [],
        [0, 1, 2],
        mask_token_id=MASK,
        mc_num=6000,
        batch_size=60,
        generator=torch.Generator().manual_seed(2),
    )
    canvases = torch.cat(seen)
    single = canvases[(canvases == MASK).sum(1) == 1]
    freq = (single == MASK).float().mean(0)
    torch.testing.assert_close(freq, torch.full((3,), 1 / 3), atol=0.03, rtol=0)


def test_uniform_model_gives_length_times_log_vocab():
    # Every masked CE is log V, so each sample's bound is (L/l) * l * log V = L log V exactly.
    got = mc_loglikelihood(
        lambda ids: torch.zeros(*ids.shape, VOCAB),
        [1],
        [0, 1, 2, 3, 4],
        mask_token_id=MASK,
        mc_num=10,
        batch_size=4,
    )
    assert got == pytest.approx(-5 * math.log(VOCAB), rel=1e-6)


def test_stratified_counts_cover_the_range_evenly_from_any_offset():
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        levels = stratified_mask_counts(8, 4, generator=g)
        assert sorted(levels.tolist()) == [1, 1, 2, 2, 3, 3, 4, 4]
    # each position's level is uniform over 1..L across offsets k
    rows = torch.stack(
        [
            stratified_mask_counts(3, 5, generator=torch.Generator().manual_seed(s))
            for s in range(3000)
        ]
    )
    for i in range(3):
        freq = torch.bincount(rows[:, i], minlength=6)[1:].double() / 3000
        torch.testing.assert_close(
            freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.03, rtol=0
        )


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        mc_loglikelihood(lambda ids: ids, [1], [], mask_token_id=MASK)
    with pytest.raises(ValueError, match="mc_num"):
        mc_loglikelihood(lambda ids: ids, [1], [2, 3], mask_token_id=MASK, mc_num=0)
