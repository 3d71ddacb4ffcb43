import math

import pytest
import torch

from diffutron_core import CosineSchedule, LinearSchedule, Schedule


def test_linear_alpha_and_weight_pinned():
    t = torch.tensor([0.25, 0.5, 0.8])
    torch.testing.assert_close(LinearSchedule().alpha(t), torch.tensor([0.75, 0.5, 0.2]))
    torch.testing.assert_close(LinearSchedule().weight(t), torch.tensor([4.0, 2.0, 1.25]))


def test_linear_weight_is_one_over_t_near_eps():
    t = torch.tensor([1e-3, 1e-6])
    torch.testing.assert_close(LinearSchedule().weight(t), torch.tensor([1000.0, 1e6]))


def test_cosine_alpha_and_weight_pinned():
    # alpha(t) = 1 - sin(pi t / 2); weight(t) = (pi/2) / tan(pi t / 2)
    t = torch.tensor([0.5, 1 / 3, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        CosineSchedule().alpha(t),
        torch.tensor([0.29289321881345254, 0.5, 0.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        CosineSchedule().weight(t[:2]),
        torch.tensor([1.5707963267948966, 2.7206990463513265], dtype=torch.float64),
    )


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_weight_equals_minus_alpha_prime_over_one_minus_alpha(schedule):
    """Independent check: alpha' by autograd, the quotient in float64."""
    t = torch.linspace(0.01, 0.99, 25, dtype=torch.float64, requires_grad=True)
    alpha = schedule.alpha(t)
    (alpha_prime,) = torch.autograd.grad(alpha.sum(), t)
    expected = -alpha_prime / (1 - alpha.detach())
    torch.testing.assert_close(schedule.weight(t.detach()), expected)
    torch.testing.assert_close(schedule.alpha_derivative(t.detach()), alpha_prime)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_alpha_runs_from_one_to_zero(schedule):
    ends = schedule.alpha(torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_cosine_weight_is_accurate_in_float32_near_eps():
    got = CosineSchedule().weight(torch.tensor([1e-3], dtype=torch.float32))
    exact = math.pi / 2 / math.tan(math.pi / 2 * 1e-3)  # 999.99918
    assert got.item() == pytest.approx(exact, rel=1e-6)


def test_generic_weight_of_a_user_schedule():
    class Square(Schedule):  # alpha = 1 - t^2, alpha' = -2t, weight = 2t / t^2 = 2 / t
        def alpha(self, t):
            return 1 - t**2

        def alpha_derivative(self, t):
            return -2 * t

    torch.testing.assert_close(Square().weight(torch.tensor([0.5, 0.25])), torch.tensor([4.0, 8.0]))


def test_schedules_accept_python_floats():
    assert LinearSchedule().weight(0.5).item() == 2.0
    assert CosineSchedule().alpha(1 / 3).item() == pytest.approx(0.5)
