import pytest

from diffutron_data import CPTCollator, SFTCollator


def test_cpt_collator_pinned():
    batch = CPTCollator(pad_token_id=0, special_token_ids=(1, 2), return_tensors="np")(
        [{"input_ids": [2, 7, 8, 1]}, {"input_ids": [2, 9, 1]}]
    )
    assert batch["input_ids"].tolist() == [[2, 7, 8, 1], [2, 9, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["maskable"].tolist() == [[False, True, True, False], [False, True, False, False]]


def test_cpt_collator_pads_to_a_multiple_and_returns_torch():
    torch = pytest.importorskip("torch")
    batch = CPTCollator(pad_token_id=0, pad_to_multiple_of=8)([{"input_ids": [5, 6, 7]}])
    assert isinstance(batch["input_ids"], torch.Tensor) and batch["input_ids"].shape == (1, 8)


def test_sft_collator_pad_tail_on_and_off():
    features = [
        {"input_ids": [10, 11, 12], "maskable": [False, False, True], "prompt_length": 2},
        {"input_ids": [10, 13], "maskable": [False, True], "prompt_length": 1},
    ]
    on = SFTCollator(pad_token_id=0, max_length=4, return_tensors="np")(features)
    assert on["input_ids"].tolist() == [[10, 11, 12, 0], [10, 13, 0, 0]]
    assert on["maskable"].tolist() == [[False, False, True, True], [False, True, True, True]]
    assert (on["attention_mask"] == 1).all() and on["prompt_length"].tolist() == [2, 1]
    off = SFTCollator(pad_token_id=0, pad_tail=False, return_tensors="np")(features)
    assert off["input_ids"].shape == (2, 3)
    assert off["maskable"].tolist() == [[False, False, True], [False, True, False]]
    assert off["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_rows_longer_than_max_length_are_refused():
    with pytest.raises(ValueError, match="exceeds max_length 2"):
        SFTCollator(pad_token_id=0, max_length=2, return_tensors="np")(
            [{"input_ids": [1, 2, 3], "maskable": [0, 1, 1], "prompt_length": 1}]
        )
