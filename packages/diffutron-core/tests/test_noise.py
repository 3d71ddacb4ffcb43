import pytest
import torch

from diffutron_core import CosineSchedule, mask_tokens, sample_t

MASK = 99


def test_sample_t_range_and_moments():
    t = sample_t(200_000, eps=0.2, generator=torch.Generator().manual_seed(0))
    assert t.shape == (200_000,) and t.dtype == torch.float32
    assert t.min() >= 0.2 and t.max() < 1.0
    assert t.mean().item() == pytest.approx(0.6, abs=3e-3)  # (eps + 1) / 2
    assert t.var().item() == pytest.approx(0.8**2 / 12, rel=2e-2)  # (1 - eps)^2 / 12


def test_sample_t_is_the_affine_map_of_one_uniform_draw_per_row():
    u = torch.rand(5, generator=torch.Generator().manual_seed(3))
    t = sample_t(5, eps=1e-3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(t, 1e-3 + (1 - 1e-3) * u)


def test_sample_t_never_returns_one():
    t = sample_t(1_000_000, eps=0.5, generator=torch.Generator().manual_seed(1))
    assert (t < 1.0).all()


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_sample_t_rejects_bad_eps(bad):
    with pytest.raises(ValueError, match="eps"):
        sample_t(3, eps=bad)


def test_mask_tokens_pinned_extremes():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    maskable = torch.tensor([[False, True, True, False], [True, True, True, True]])
    noisy, masked = mask_tokens(
        ids, torch.tensor([1.0, 0.0]), mask_token_id=MASK, maskable=maskable
    )
    assert noisy.tolist() == [[5, MASK, MASK, 8], [9, 10, 11, 12]]
    assert masked.tolist() == [[False, True, True, False], [False, False, False, False]]


def test_mask_tokens_without_maskable_masks_everything_at_t_one():
    noisy, masked = mask_tokens(torch.arange(6).view(2, 3), torch.ones(2), mask_token_id=MASK)
    assert masked.all() and (noisy == MASK).all()


def test_empirical_mask_rate_is_t_for_linear():
    t = torch.tensor([0.1, 0.5, 0.9])
    ids = torch.zeros(3, 50_000, dtype=torch.long)
    noisy, masked = mask_tokens(
        ids, t, mask_token_id=MASK, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(masked.float().mean(1), t, atol=0.01, rtol=0)
    assert torch.equal(noisy == MASK, masked)


def test_empirical_mask_rate_is_one_minus_alpha_for_cosine():
    t = torch.tensor([0.1, 0.5, 0.9])
    ids = torch.zeros(3, 50_000, dtype=torch.long)
    _, masked = mask_tokens(
        ids,
        t,
        mask_token_id=MASK,
        schedule=CosineSchedule(),
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(
        masked.float().mean(1), torch.tensor([0.1564, 0.7071, 0.9877]), atol=0.01, rtol=0
    )


def test_mask_rate_counts_only_maskable_positions():
    ids = torch.zeros(1, 40_000, dtype=torch.long)
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:, ::2] = True
    _, masked = mask_tokens(
        ids,
        torch.tensor([0.3]),
        mask_token_id=MASK,
        maskable=maskable,
        generator=torch.Generator().manual_seed(0),
    )
    assert not masked[:, 1::2].any()
    assert masked[:, ::2].float().mean().item() == pytest.approx(0.3, abs=0.01)


def test_mask_tokens_is_reproducible_with_a_generator():
    ids = torch.arange(100).view(4, 25)
    t = torch.full((4,), 0.5)
    a = mask_tokens(ids, t, mask_token_id=MASK, generator=torch.Generator().manual_seed(7))
    b = mask_tokens(ids, t, mask_token_id=MASK, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_mask_tokens_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="t must have shape"):
        mask_tokens(torch.zeros(2, 3, dtype=torch.long), torch.ones(3), mask_token_id=MASK)
    with pytest.raises(ValueError, match="maskable"):
        mask_tokens(
            torch.zeros(2, 3, dtype=torch.long),
            torch.ones(2),
            mask_token_id=MASK,
            maskable=torch.ones(2, 4, dtype=torch.bool),
        )
