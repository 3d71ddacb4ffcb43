import math

import pytest
import torch

from diffutron_core import CosineSchedule, mdlm_loss

# A hand-checkable batch: B=2, L=3, V=2, every position's logits are [2, 0], so
# CE(target 0) = log(1 + e^-2) = 0.12692801 and CE(target 1) = 2 + log(1 + e^-2) = 2.12692801.
CE0 = math.log1p(math.exp(-2))
CE1 = 2 + CE0


def batch():
    logits = torch.tensor([2.0, 0.0]).expand(2, 3, 2).clone()
    target = torch.tensor([[0, 1, 0], [1, 1, 0]])
    masked = torch.tensor([[True, True, False], [False, True, True]])
    maskable = torch.tensor([[True, True, True], [False, True, True]])
    t = torch.tensor([0.5, 0.25])  # weights 1/t = 2 and 4
    return logits, target, masked, maskable, t


def test_sequence_normalisation_pinned():
    # row 0: 2 * (CE0 + CE1) / 3 = 1.50257068; row 1: 4 * (CE1 + CE0) / 2 = 4.50771204
    loss = mdlm_loss(*batch())
    assert loss.item() == pytest.approx(3.0051413627812606, rel=1e-6)
    assert loss.item() == pytest.approx((2 * (CE0 + CE1) / 3 + 4 * (CE1 + CE0) / 2) / 2, rel=1e-6)


def test_token_normalisation_pinned():
    # (2 * (CE0 + CE1) + 4 * (CE1 + CE0)) / 5 maskable positions
    loss = mdlm_loss(*batch(), normalization="token")
    assert loss.item() == pytest.approx(2.7046272265031344, rel=1e-6)


def test_row_with_nothing_maskable_contributes_zero_but_counts_in_the_mean():
    logits, target, masked, maskable, t = batch()
    maskable[1] = False
    loss = mdlm_loss(logits, target, masked, maskable, t)
    assert loss.item() == pytest.approx((2 * (CE0 + CE1) / 3) / 2, rel=1e-6)


def test_masked_positions_outside_maskable_are_not_scored():
    logits, target, masked, maskable, t = batch()
    masked[1, 0] = True  # not maskable in row 1
    assert mdlm_loss(logits, target, masked, maskable, t).item() == pytest.approx(
        3.0051413627812606, rel=1e-6
    )


def test_loss_weight_is_one_over_t():
    logits, target, masked, maskable, _ = batch()
    base = mdlm_loss(logits, target, masked, maskable, torch.tensor([0.5, 0.5]))
    doubled = mdlm_loss(logits, target, masked, maskable, torch.tensor([0.25, 0.25]))
    assert doubled.item() == pytest.approx(2 * base.item(), rel=1e-6)
    unweighted = mdlm_loss(logits, target, masked, maskable, torch.ones(2))
    assert base.item() == pytest.approx(2 * unweighted.item(), rel=1e-6)


def test_cosine_schedule_weight_is_used():
    logits, target, masked, maskable, _ = batch()
    t = torch.tensor([0.5, 0.5])  # cosine weight (pi/2) / tan(pi/4) = pi/2
    linear_unit = mdlm_loss(logits, target, masked, maskable, torch.ones(2))
    cosine = mdlm_loss(logits, target, masked, maskable, t, schedule=CosineSchedule())
    assert cosine.item() == pytest.approx(math.pi / 2 * linear_unit.item(), rel=1e-6)


def test_gradient_reaches_only_scored_positions_and_is_finite_near_eps():
    logits, target, masked, maskable, _ = batch()
    logits.requires_grad_(True)
    loss = mdlm_loss(logits, target, masked, maskable, torch.tensor([1e-3, 1e-3]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    scored = masked & maskable
    assert (logits.grad[~scored] == 0).all()
    assert (logits.grad[scored].abs().sum(-1) > 0).all()


def test_gathered_logits_give_the_same_loss():
    logits, target, masked, maskable, t = batch()
    dense = mdlm_loss(logits, target, masked, maskable, t)
    sparse = mdlm_loss(logits[masked & maskable], target, masked, maskable, t)
    assert sparse.item() == pytest.approx(dense.item(), rel=1e-6)


def test_low_precision_logits_are_upcast():
    logits, *rest = batch()
    assert mdlm_loss(logits.bfloat16(), *rest).dtype == torch.float32


def test_nothing_masked_gives_zero_with_a_gradient():
    logits, target, _, maskable, t = batch()
    logits.requires_grad_(True)
    loss = mdlm_loss(logits, target, torch.zeros_like(maskable), maskable, t)
    loss.backward()
    assert loss.item() == 0.0 and (logits.grad == 0).all()


def test_bad_arguments():
    logits, target, masked, maskable, t = batch()
    with pytest.raises(ValueError, match="normalization"):
        mdlm_loss(logits, target, masked, maskable, t, normalization="batch")
    with pytest.raises(ValueError, match="scored positions"):
        mdlm_loss(logits[:1, 0], target, masked, maskable, t)
