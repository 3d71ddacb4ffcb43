import pytest
import torch
from transformers import AutoModelForMaskedLM

from diffutron_data import CPTCollator, corpus_sentences, load_tokenizer
from diffutron_train import (
    LoopSettings,
    TrainError,
    apply_lora,
    build_model,
    model_config,
    train_loop,
)
from diffutron_train.checkpoints import checkpoints as _checkpoints
from diffutron_train.export import export_model

MASK = 4


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


@pytest.fixture(scope="module")
def rows(tokenizer):
    encoded = [tokenizer(s)["input_ids"] for s in corpus_sentences()[:200]]
    return [{"input_ids": ids} for ids in encoded if len(ids) <= 40]


def lora_model(tokenizer):
    base = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)
    return apply_lora(base, r=8, lora_alpha=16, lora_dropout=0.1)


def settings(**changes):
    values = {
        "batch_size": 8,
        "grad_accum": 2,
        "max_steps": 8,
        "save_every": 3,
        "keep_last": 2,
        "learning_rate": 3e-3,
        "seed": 5,
    }
    return LoopSettings(**{**values, **changes})


def collate():
    return CPTCollator(pad_token_id=0, special_token_ids=(1, 2))


def weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_resumed_run_ends_with_the_same_weights(tmp_path, tokenizer, rows):
    straight = lora_model(tokenizer)
    assert (
        train_loop(straight, rows, collate(), tmp_path / "a", settings(), mask_token_id=MASK) == 8
    )
    interrupted = lora_model(tokenizer)
    done = train_loop(
        interrupted, rows, collate(), tmp_path / "b", settings(), mask_token_id=MASK, stop_after=5
    )
    assert done == 5 and [p.name for p in _checkpoints(tmp_path / "b")] == ["step-3"]
    resumed = lora_model(tokenizer)  # a fresh process: nothing but the checkpoint carries over
    assert (
        train_loop(
            resumed, rows, collate(), tmp_path / "b", settings(), mask_token_id=MASK, resume=True
        )
        == 8
    )
    expected, got = weights(straight), weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(weights(lora_model(tokenizer)).values(), got.values(), strict=True)
    )


def test_checkpoints_keep_the_last_k_and_leave_no_temporary_folders(tmp_path, tokenizer, rows):
    train_loop(lora_model(tokenizer), rows, collate(), tmp_path, settings(), mask_token_id=MASK)
    assert [p.name for p in _checkpoints(tmp_path)] == ["step-6", "step-8"]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_export_reloads_with_plain_transformers_and_gives_identical_logits(
    tmp_path, tokenizer, rows
):
    model = lora_model(tokenizer)
    train_loop(model, rows, collate(), tmp_path / "run", settings(max_steps=3), mask_token_id=MASK)
    model.eval()
    ids = torch.tensor([tokenizer("Bugün hava çok güzel.")["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    out = export_model(model, tokenizer, tmp_path / "model")
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    reloaded = AutoModelForMaskedLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, expected, rtol=1e-5, atol=1e-5)
    assert load_tokenizer(str(out)).chat_template == tokenizer.chat_template


def test_bad_runs_are_one_line_errors(tmp_path, tokenizer, rows):
    with pytest.raises(TrainError, match="no training rows"):
        train_loop(lora_model(tokenizer), [], collate(), tmp_path, settings(), mask_token_id=MASK)
    with pytest.raises(TrainError, match="no intact checkpoint under"):
        train_loop(
            lora_model(tokenizer),
            rows,
            collate(),
            tmp_path,
            settings(),
            mask_token_id=MASK,
            resume=True,
        )


def test_paged_adamw_8bit_runs_on_cpu(tmp_path, tokenizer, rows):
    model = lora_model(tokenizer)
    before = weights(model)
    train_loop(
        model,
        rows,
        collate(),
        tmp_path,
        settings(max_steps=2, optimizer="paged_adamw_8bit"),
        mask_token_id=MASK,
    )
    assert any(not torch.equal(before[n], p) for n, p in weights(model).items())


def test_resume_skips_a_damaged_newest_checkpoint_and_still_ends_exactly(
    tmp_path, tokenizer, rows, caplog
):
    straight = lora_model(tokenizer)
    train_loop(straight, rows, collate(), tmp_path / "a", settings(), mask_token_id=MASK)
    run = tmp_path / "b"
    train_loop(
        lora_model(tokenizer), rows, collate(), run, settings(), mask_token_id=MASK, stop_after=6
    )
    assert [p.name for p in _checkpoints(run)] == ["step-3", "step-6"]
    damaged = run / "checkpoints" / "step-6" / "trainable.safetensors"
    data = bytearray(damaged.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit of a weight: only the checksum can tell
    damaged.write_bytes(bytes(data))
    resumed = lora_model(tokenizer)
    with caplog.at_level("WARNING"):
        done = train_loop(
            resumed, rows, collate(), run, settings(), mask_token_id=MASK, resume=True
        )
    assert done == 8
    assert "step-6 is damaged (trainable.safetensors does not match its checksum)" in caplog.text
    for name, value in weights(straight).items():
        torch.testing.assert_close(weights(resumed)[name], value, rtol=0, atol=0)
    assert [p.name for p in _checkpoints(run)] == ["step-6", "step-8"]  # step-6 rewritten whole


def test_resume_with_no_intact_checkpoint_is_one_line(tmp_path, tokenizer, rows):
    run = tmp_path / "run"
    train_loop(
        lora_model(tokenizer), rows, collate(), run, settings(), mask_token_id=MASK, stop_after=3
    )
    (run / "checkpoints" / "step-3" / "progress.json").write_text("{", encoding="utf-8")
    with pytest.raises(TrainError, match="no intact checkpoint under"):
        train_loop(
            lora_model(tokenizer), rows, collate(), run, settings(), mask_token_id=MASK, resume=True
        )
