import pytest
import torch

from diffutron_core import gumbel_argmax, peak_argmax, transfer_counts


def llada_num_transfer_tokens(n_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's get_num_transfer_tokens, restated as the independent reference."""
    base = n_masked[:, None] // steps
    remainder = n_masked % steps
    counts = torch.zeros(n_masked.numel(), steps, dtype=torch.long) + base
    for i in range(n_masked.numel()):
        counts[i, : remainder[i]] += 1
    return counts


def llada_add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """LLaDA's add_gumbel_noise (global RNG), restated as the independent reference."""
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


def test_transfer_counts_pinned():
    got = transfer_counts(torch.tensor([5, 8, 2, 1, 3, 0]), 4)
    assert got.tolist() == [
        [1, 1, 2, 1],  # 5/4=1.25->1, 4/3=1.33->1, 3/2=1.5->2 (half to even), 1
        [2, 2, 2, 2],
        [0, 1, 0, 1],  # 2/4=0.5->0, 2/3->1, 1/2=0.5->0, 1
        [0, 0, 0, 1],
        [1, 1, 0, 1],  # 3/4->1, 2/3->1, 1/2=0.5->0, 1
        [0, 0, 0, 0],
    ]
    assert transfer_counts(torch.tensor([5]), 3).tolist() == [[2, 2, 1]]  # 1.67->2, 1.5->2, 1


def test_transfer_counts_scalar_and_dtype():
    got = transfer_counts(7, 2)
    assert got.dtype == torch.long and got.tolist() == [4, 3]  # 3.5 -> 4 (even), 3


def test_transfer_counts_rows_sum_to_n():
    n = torch.arange(0, 101)
    for steps in range(1, 21):
        counts = transfer_counts(n, steps)
        assert counts.shape == (101, steps)
        assert torch.equal(counts.sum(1), n) and (counts >= 0).all()


def test_transfer_counts_equal_llada_when_steps_divide_n():
    for steps in range(1, 17):
        n = torch.arange(0, 65 * steps, steps)  # every multiple of steps up to 64 * steps
        assert torch.equal(transfer_counts(n, steps), llada_num_transfer_tokens(n, steps))


def test_transfer_counts_bad_input():
    with pytest.raises(ValueError, match="steps"):
        transfer_counts(torch.tensor([3]), 0)
    with pytest.raises(ValueError, match="non-negative"):
        transfer_counts(torch.tensor([-1]), 2)


def test_gumbel_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 2.9, 0.0]])
    assert gumbel_argmax(logits, 0.0).tolist() == [1, 0]


@pytest.mark.parametrize("temperature", [0.1, 0.7, 1.0, 2.5])
def test_gumbel_matches_llada_for_the_same_draws(temperature):
    logits = torch.randn(64, 50, generator=torch.Generator().manual_seed(1)) * 4
    torch.manual_seed(11)
    expected = llada_add_gumbel_noise(logits, temperature).argmax(-1)
    got = gumbel_argmax(logits, temperature, generator=torch.Generator().manual_seed(11))
    assert torch.equal(got, expected)


def test_gumbel_does_not_overflow_for_large_logits():
    logits = torch.tensor([[1000.0, 990.0, -1000.0]] * 4)
    got = gumbel_argmax(logits, 0.1, generator=torch.Generator().manual_seed(0))
    assert got.tolist() == [0, 0, 0, 0]


def test_gumbel_frequencies_follow_tempered_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0]).expand(40_000, 3)
    draws = gumbel_argmax(logits, 0.7, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).double() / draws.numel()
    expected = torch.softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64) / 0.7, 0)
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)


def test_gumbel_rejects_negative_temperature():
    with pytest.raises(ValueError, match="temperature"):
        gumbel_argmax(torch.zeros(3), -1.0)


def test_the_host_plan_is_transfer_counts_count_for_count():
    from diffutron_core import transfer_plan

    for steps in range(1, 40):
        for n in range(0, 130):
            assert transfer_plan(n, steps) == transfer_counts(n, steps).tolist(), (n, steps)
    assert transfer_plan(5, 2) == [2, 3]  # 2.5 rounds to even, the rest comes last
    with pytest.raises(ValueError, match="steps must be >= 1"):
        transfer_plan(4, 0)


@pytest.mark.parametrize("width", [4096, 1000, 256_000 // 64, 97, 18, 5])
def test_peak_argmax_is_max_over_the_last_dim_ties_and_infinities_included(width):
    # few distinct values, so most rows tie; -inf entries and whole -inf rows; 1-D, 2-D and 3-D
    generator = torch.Generator().manual_seed(width)
    logits = torch.randint(-3, 3, (3, 40, width), generator=generator).float()
    logits[logits == -3] = float("-inf")
    logits[0, 0] = float("-inf")
    logits[1, 1, -1] = 7.0  # the peak in the last column, where a chunk ends
    logits[1, 2, 0] = 7.0  # and in the first
    for case in (logits, logits[0], logits[0, 3], logits.transpose(0, 1)):
        expected = case.max(dim=-1)
        values, indices = peak_argmax(case)
        assert torch.equal(values, expected.values)
        assert torch.equal(indices, expected.indices)


def test_peak_argmax_of_a_float_row_is_max_over_it():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 4096, generator=generator, dtype=torch.bfloat16)
    values, indices = peak_argmax(logits)
    assert torch.equal(values, logits.max(dim=-1).values)
    assert torch.equal(indices, logits.max(dim=-1).indices)
