import pytest
import torch

from diffutron_train import apply_lora, build_model, count_parameters, model_config


def test_paper_backbone_shape_counts_like_mmbert_base():
    model = build_model(model_config("paper"), device="meta")
    assert count_parameters(model).total == 307_786_240
    assert model.model.embeddings.tok_embeddings.weight.shape == (256_000, 768)
    assert model.decoder.weight is model.model.embeddings.tok_embeddings.weight  # tied


def test_paper_lora_trains_14_94_percent():
    model = apply_lora(build_model(model_config("paper"), device="meta"))
    count = count_parameters(model)
    assert (count.trainable, count.total) == (54_067_200, 361_853_440)
    assert str(count) == "trainable parameters: 54,067,200 of 361,853,440 (14.94%)"
    adapted = {name.split(".lora_")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert any(name.endswith("attn.Wqkv") for name in adapted)
    assert any(name.endswith("attn.Wo") for name in adapted) and any(
        name.endswith("mlp.Wo") for name in adapted
    )
    assert not any("head" in name or "embeddings" in name for name in adapted)


def test_all_linear_would_give_15_03_percent():
    model = apply_lora(
        build_model(model_config("paper"), device="meta"), target_modules="all-linear"
    )
    assert f"{count_parameters(model).percent:.2f}" == "15.03"


def test_tiny_preset_builds_and_runs_forward():
    config = model_config("tiny", vocab_size=4096)
    model = build_model(config, seed=0).eval()
    ids = torch.tensor([[2, 100, 200, 4, 1]])
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, 5, 4096) and torch.isfinite(logits).all()
    a, b = build_model(config, seed=0), build_model(config, seed=0)
    assert torch.equal(a.decoder.weight, b.decoder.weight)


def test_tiny_lora_freezes_the_base_and_leaves_outputs_unchanged_at_init():
    base = build_model(model_config("tiny", vocab_size=64), seed=1).eval()
    ids = torch.tensor([[2, 10, 11, 12, 1]])
    before = base(input_ids=ids).logits
    adapted = apply_lora(base, r=8, lora_alpha=8).eval()
    assert torch.allclose(adapted(input_ids=ids).logits, before)  # LoRA B starts at zero
    assert 0 < count_parameters(adapted).percent < 100


def test_bad_presets():
    with pytest.raises(ValueError, match="unknown preset"):
        model_config("huge")
    with pytest.raises(ValueError, match="vocab_size"):
        model_config("tiny")
