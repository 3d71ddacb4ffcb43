import sys

import pytest
import torch

from diffutron_core import seeds


def old_window_seed(seed, window, sample):
    """The perplexity seed before :func:`window_seed`: it collides beyond 64 samples."""
    return seed * 1_000_003 + window * 64 + sample


def test_window_seeds_repeat_the_old_formula_up_to_64_samples():
    for samples in (1, 4, 64):
        for seed in (0, 3, 2**31 - 1):
            for window in range(40):
                for sample in range(samples):
                    got = seeds.window_seed(seed, window, sample, samples)
                    assert got == old_window_seed(seed, window, sample)


def test_window_seeds_never_collide_with_more_than_64_samples():
    windows, samples = 30, 100
    pairs = [(w, k) for w in range(windows) for k in range(samples)]
    old = {old_window_seed(7, w, k) for w, k in pairs}
    assert len(old) < len(pairs)  # what the old formula did: sample 64 of w was sample 0 of w+1
    new = {seeds.window_seed(7, w, k, samples) for w, k in pairs}
    assert len(new) == len(pairs)
    assert seeds.window_seed(7, 0, 64, samples) != seeds.window_seed(7, 1, 0, samples)
    with pytest.raises(ValueError, match=r"sample must be in 0\.\.99, got 100"):
        seeds.window_seed(7, 0, 100, samples)


def test_training_seeds_are_the_loops_formulas():
    stride = 1_000_003  # what the training loop used before these functions existed
    for seed, draw in [(0, 0), (0, 5), (42, 0), (42, 123_456), (2**31 - 1, 10**9)]:
        assert seeds.mask_seed(seed, draw) == seed * stride + draw
        assert seeds.dropout_seed(seed, draw) == seed * stride + draw + (1 << 40)
    assert seeds.mask_seed(1, 0) == 1_000_003 and seeds.dropout_seed(0, 0) == 1_099_511_627_776
    assert [seeds.shuffle_seed(3, epoch) for epoch in range(3)] == [3, 4, 5]


@pytest.mark.skipif(sys.byteorder != "little", reason="values recorded on a little-endian host")
def test_request_seeds_keep_their_values():
    # Recorded with the formula it replaced: crc32 of torch int64 tensors' bytes.
    assert seeds.request_seed(0, [1, 2, 3], [4, 5]) == 3_131_197_736
    assert seeds.request_seed(7, [], [9]) == 2_061_014_039
    assert seeds.request_seed(123_456_789, [30_000, 2, 1], [0]) == 123_459_745_181_613
    assert seeds.request_seed(3, torch.tensor([5, 6]), [7]) == 316_938_350
    assert seeds.request_seed(2**40, [-1, 2**40], []) == 1_099_514_928_359_255_128


def test_request_seeds_depend_on_the_seed_and_every_id():
    base = seeds.request_seed(0, [1, 2], [3])
    assert seeds.request_seed(0, [1, 2], [3]) == base
    assert len({base, seeds.request_seed(1, [1, 2], [3]), seeds.request_seed(0, [1, 2], [4])}) == 3
    assert 0 <= seeds.request_seed(2**62, [1], [2]) < 2**63


def test_generator_is_seeded_and_on_the_cpu_by_default():
    a, b = seeds.generator(5), seeds.generator(5)
    assert a.device == torch.device("cpu")
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    first = torch.rand(4, generator=seeds.generator(5))
    assert not torch.equal(torch.rand(4, generator=seeds.generator(6)), first)
