"""The sampler never writes the mask token (nor, when infilling, padding) into an answer, even
when the model finds it the most probable token: an answer with a mask in it has a hole."""

import pytest
import torch

from diffutron_sample import SamplerConfig, generate, infill

from .conftest import EOS, MASK, PAD, tiny_model


def favouring(token: int, seed: int = 0):
    """A tiny random model whose output layer puts ``token`` first at every position."""
    model = tiny_model(seed)
    with torch.no_grad():
        model.decoder.bias[token] += 100.0
    return model


@pytest.mark.parametrize(
    "config",
    [
        SamplerConfig(steps=8, max_new_tokens=8, block_length=4),
        SamplerConfig(steps=8, max_new_tokens=8, block_length=4, temperature=0.7),
        SamplerConfig(steps=8, max_new_tokens=8, block_length=8, threshold=0.5),
        SamplerConfig(steps=8, max_new_tokens=8, block_length=8, cfg_scale=1.0),
    ],
    ids=["greedy", "temperature", "threshold", "guidance"],
)
def test_generate_never_commits_the_mask_even_when_it_is_most_probable(config):
    model = favouring(MASK)
    prompt = torch.tensor([[2, 17, 9, 30, 11]])
    with torch.no_grad():  # the premise: the model's first choice everywhere is the mask
        assert bool((model(prompt).logits.argmax(-1) == MASK).all())
    out = generate(
        model,
        prompt,
        config,
        mask_token_id=MASK,
        eos_token_id=EOS,
        generator=torch.Generator().manual_seed(0),
    )
    assert not bool((out[:, prompt.shape[1] :] == MASK).any()), out


def test_infill_writes_neither_the_mask_nor_padding_into_the_text():
    model = favouring(PAD)
    with torch.no_grad():
        model.decoder.bias[MASK] += 50.0  # the mask second, padding first
    ids = torch.tensor([[2, 17, MASK, MASK, 30, MASK, 11, 1]])
    out = infill(
        model,
        ids,
        SamplerConfig(steps=4, max_new_tokens=4, block_length=4),
        mask_token_id=MASK,
        pad_token_id=PAD,
    )
    filled = out[0, [2, 3, 5]]
    assert not bool(torch.isin(filled, torch.tensor([MASK, PAD])).any()), out
    assert out[0, [0, 1, 4, 6, 7]].tolist() == [2, 17, 30, 11, 1]  # given tokens unchanged


def test_generate_may_end_with_padding_which_the_text_never_shows():
    """dLLM's BERT recipe teaches the model to write pad after the answer: generate may commit
    pad as the end of the answer (the trimmed text stops there), so trained models keep their
    reference outputs."""
    model = favouring(PAD)
    out = generate(model, torch.tensor([[2, 17, 9]]), SamplerConfig(4, 4, 4), mask_token_id=MASK)
    assert out[0, 3:].tolist() == [PAD] * 4


@pytest.mark.parametrize("threshold", [None, 0.9], ids=["scheduled", "threshold"])
def test_logits_that_are_not_finite_stop_generation_in_one_line(threshold):
    """A model in a precision too low for it can give NaN or inf logits: its positions could
    never be committed (threshold decoding would loop for ever); say so instead."""
    from diffutron_sample import SampleError

    model = tiny_model(0)
    with torch.no_grad():
        model.decoder.bias[7] = float("nan")
    config = SamplerConfig(steps=4, max_new_tokens=4, block_length=4, threshold=threshold)
    with pytest.raises(SampleError, match="logits are not finite"):
        generate(model, torch.tensor([[2, 17, 9]]), config, mask_token_id=MASK)
