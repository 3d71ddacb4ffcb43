import pytest
import torch
import torch.nn.functional as F

from diffutron_core import mask_tokens
from diffutron_data import (
    SFTCollator,
    corpus_sentences,
    encode_example,
    load_tokenizer,
    split_prompt_response,
)
from diffutron_data.synthetic import make_task_rows, synthetic_conversations
from diffutron_train import build_model, masked_lm_loss, model_config

MASK = 4


class FullLogitsOnly(torch.nn.Module):
    """The same model seen without its backbone/head split: forces the full-logits path."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs):
        return self.inner(**kwargs)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


def test_restricted_head_gives_the_full_head_loss(tokenizer):
    model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    ids = torch.randint(5, len(tokenizer), (4, 24), generator=torch.Generator().manual_seed(0))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    for objective in ("mlm", "mdlm"):
        a = masked_lm_loss(
            model,
            ids,
            maskable,
            mask_token_id=MASK,
            objective=objective,
            generator=torch.Generator().manual_seed(1),
        )
        b = masked_lm_loss(
            FullLogitsOnly(model),
            ids,
            maskable,
            mask_token_id=MASK,
            objective=objective,
            generator=torch.Generator().manual_seed(1),
        )
        torch.testing.assert_close(a, b)


def test_mlm_loss_is_the_mean_cross_entropy_of_the_masked_tokens(tokenizer):
    model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    ids = torch.randint(5, len(tokenizer), (3, 20), generator=torch.Generator().manual_seed(2))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False
    loss = masked_lm_loss(
        model,
        ids,
        maskable,
        mask_token_id=MASK,
        mlm_probability=0.3,
        generator=torch.Generator().manual_seed(3),
    )
    noisy, masked = mask_tokens(
        ids,
        torch.full((3,), 0.3),
        mask_token_id=MASK,
        maskable=maskable,
        generator=torch.Generator().manual_seed(3),
    )
    expected = F.cross_entropy(model(input_ids=noisy).logits[masked], ids[masked])
    torch.testing.assert_close(loss, expected)
    assert not masked[:, 0].any()


def test_nothing_masked_is_zero_with_a_gradient(tokenizer):
    model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    ids = torch.randint(5, 100, (2, 8))
    loss = masked_lm_loss(model, ids, torch.zeros_like(ids, dtype=torch.bool), mask_token_id=MASK)
    loss.backward()
    assert loss.item() == 0.0
    with pytest.raises(ValueError, match="objective"):
        masked_lm_loss(
            model, ids, torch.ones_like(ids, dtype=torch.bool), mask_token_id=MASK, objective="ar"
        )


def held_out_loss(model, ids, maskable, objective, attention_mask=None):
    model.eval()
    with torch.no_grad():
        losses = [
            masked_lm_loss(
                model,
                ids,
                maskable,
                mask_token_id=MASK,
                objective=objective,
                attention_mask=attention_mask,
                generator=torch.Generator().manual_seed(s),
            ).item()
            for s in range(4)
        ]
    model.train()
    return sum(losses) / len(losses)


def train(model, batches, objective, steps, lr=3e-3):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        ids, maskable, attention = batches(step)
        loss = masked_lm_loss(
            model,
            ids,
            maskable,
            mask_token_id=MASK,
            objective=objective,
            attention_mask=attention,
            generator=g,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_a_few_dozen_cpt_steps_lower_held_out_masked_lm_loss_on_ud(tokenizer, ud_lines):
    rows = [tokenizer(line)["input_ids"] for line in ud_lines[:3000]]
    rows = [r for r in rows if len(r) <= 32]
    data = torch.zeros(len(rows), 32, dtype=torch.long)
    for i, r in enumerate(rows):
        data[i, : len(r)] = torch.tensor(r)
    real = data != 0
    held, train_ids, train_real = data[:64], data[64:], real[64:]
    model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    before = held_out_loss(model, held, real[:64], "mlm", real[:64].long())

    def batches(step):
        index = torch.arange(step * 32, step * 32 + 32) % len(train_ids)
        return train_ids[index], train_real[index], train_real[index].long()

    train(model, batches, "mlm", steps=40)
    after = held_out_loss(model, held, real[:64], "mlm", real[:64].long())
    assert after < before - 1.0, (before, after)  # from ~ln(4096) = 8.3 nats, down by over one


def test_a_few_dozen_sft_steps_lower_held_out_response_loss_on_a_synthetic_task(tokenizer):
    rows = make_task_rows("first_word", corpus_sentences(), n=400, seed=0)
    features = []
    for messages in synthetic_conversations(rows):
        row, _ = encode_example(*split_prompt_response(messages), tokenizer, max_length=96)
        if row is not None:
            features.append(row)
    collate = SFTCollator(pad_token_id=0, max_length=96)
    held = collate(features[:48])
    model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    before = held_out_loss(model, held["input_ids"], held["maskable"], "mdlm")
    train_rows = features[48:]

    def batches(step):
        batch = collate([train_rows[(step * 16 + i) % len(train_rows)] for i in range(16)])
        return batch["input_ids"], batch["maskable"], None

    train(model, batches, "mdlm", steps=40)
    after = held_out_loss(model, held["input_ids"], held["maskable"], "mdlm")
    assert after < 0.6 * before, (before, after)
