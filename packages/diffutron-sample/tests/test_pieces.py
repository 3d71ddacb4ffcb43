import pytest
import torch

from diffutron_sample import SamplerConfig, apply_repetition_penalty, generate, left_pad
from diffutron_sample.penalty import present_ids as _present_ids
from diffutron_sample.vocabulary import draw, logsumexp_into

from .conftest import EOS, MASK, PAD


def test_repetition_penalty_pinned():
    logits = torch.tensor([[2.0, -2.0, 1.0], [2.0, -2.0, 1.0]])
    present = torch.tensor([[True, True, False], [False, False, True]])
    got = apply_repetition_penalty(logits, torch.tensor([0, 1]), present, 2.0)
    assert got.tolist() == [[1.0, -4.0, 1.0], [2.0, -2.0, 0.5]]


def test_present_ids_skip_padding_mask_and_eos():
    canvas = torch.tensor([[PAD, PAD, 5, 6, MASK, EOS], [7, 7, 8, MASK, MASK, MASK]])
    attention = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]).bool()
    present = _present_ids(canvas, attention, 10, mask_token_id=MASK, eos_token_id=EOS)
    assert [row.nonzero().flatten().tolist() for row in present] == [[5, 6], [7, 8]]


def test_left_pad_moves_real_tokens_flush_right():
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    padded, padded_mask = left_pad(ids, mask, pad_token_id=9)
    assert padded.tolist() == [[5, 6], [9, 7]] and padded_mask.tolist() == [
        [True, True],
        [False, True],
    ]


def test_batch_equals_alone_for_absolute_position_models_too():
    """BERT has learnt absolute positions: left padding must not shift a row's positions."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
        initializer_range=0.3,
    )
    model = BertForMaskedLM(config).eval()
    prompts = [[2, 11, 12, 13, 14, 15], [2, 21]]
    sampler = SamplerConfig(steps=8, max_new_tokens=8, block_length=4)
    alone = [generate(model, torch.tensor([p]), sampler, mask_token_id=MASK)[0] for p in prompts]
    ids = torch.tensor([prompts[0], [0, 0, 0, 0, *prompts[1]]])
    mask = torch.tensor([[1] * 6, [0, 0, 0, 0, 1, 1]])
    batch = generate(model, ids, sampler, mask_token_id=MASK, attention_mask=mask)
    assert batch[0].tolist() == alone[0].tolist()
    assert batch[1, -10:].tolist() == alone[1].tolist()


def test_the_penalty_over_canvas_ids_is_the_penalty_over_the_present_table():
    from diffutron_sample.penalty import penalize_canvas_ids

    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        canvas = torch.randint(0, 12, (3, 9), generator=g)
        attention = torch.rand(3, 9, generator=g) > 0.2
        rows = torch.randint(0, 3, (7,), generator=g)
        logits = torch.randn(7, 12, generator=g) * 3
        penalty = 1 + torch.rand(7, 1, generator=g)
        present = _present_ids(canvas, attention, 12, mask_token_id=MASK, eos_token_id=EOS)
        expected = apply_repetition_penalty(logits, rows, present, penalty)
        use = attention & (canvas != MASK) & (canvas != EOS)
        got = penalize_canvas_ids(logits.clone(), rows, canvas, use, penalty, spare_id=MASK)
        assert torch.equal(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_logsumexp_into_is_torchs_logsumexp_bit_for_bit(dtype):
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(40, 4096, generator=generator) * 6).to(dtype)
    logits[1] = float("-inf")  # a row with nothing: -inf, as torch's
    logits[2, 7] = float("inf")  # an infinite peak: inf, as torch's
    logits[3, 9] = float("nan")
    expected = torch.logsumexp(logits, dim=1)
    got = logsumexp_into(logits.clone(), logits.amax(dim=1))
    assert torch.equal(got.isnan(), expected.isnan())
    assert torch.equal(got[~got.isnan()], expected[~expected.isnan()])


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_a_draw_never_proposes_a_banned_id_and_reports_the_whole_rows_peak(temperature):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 4096, generator=generator)
    banned = (MASK, PAD)
    logits[::2, MASK] = 50.0  # the mask is the best id of every other row
    before = logits.clone()
    config = SamplerConfig(temperature=temperature)
    x0, peak = draw(logits, banned, config, torch.Generator().manual_seed(2))
    assert torch.equal(logits, before)  # the banned columns are put back
    assert not torch.isin(x0, torch.tensor(banned)).any()
    assert torch.equal(peak, before.amax(dim=1))  # banned ids included: the softmax's maximum
    if temperature == 0:
        allowed = before.clone()
        allowed[:, banned] = float("-inf")
        assert torch.equal(x0, allowed.max(dim=1).indices)


def test_row_values_are_made_once_per_set_of_values_nan_included():
    from diffutron_sample.rowvalues import row_values

    nan = float("nan")
    first = row_values([0.9, nan, float("inf")], torch.float64, "cpu")
    again = row_values([0.9, float("nan"), float("inf")], torch.float64, "cpu")
    assert again is first  # a NaN made afresh finds the same tensor
    assert first[0] == 0.9 and first[1].isnan() and first[2] == float("inf")
    assert row_values([0.9, nan, 1.0], torch.float64, "cpu") is not first
    assert row_values([0.9, nan, float("inf")], torch.float32, "cpu").dtype == torch.float32
