"""Models trained elsewhere load and chat as they are: dLLM-style folders without a chat
template or sampler config, templates saved with the tokenizer, end markers that are tokens of
their own, and LoRA adapter folders merged into their base (without PEFT)."""

import json
import logging
import math

import pytest
import torch
from safetensors.torch import save_file

from diffutron_common.chat import DLLM_BERT_CHAT_TEMPLATE
from diffutron_sample import (
    ChatSession,
    SampleError,
    SamplerConfig,
    generate,
    load_model,
    prompt_ids,
    trim,
)

from .conftest import tiny_model, word_tokenizer


def dllm_folder(path, *, template=None, seed=1):
    """A folder as dLLM's trainer leaves one: safetensors, tokenizer (no chat template unless
    given), no sampler_config.json, and a pickled training_args.bin that must never be read."""
    tokenizer = word_tokenizer()
    tokenizer.chat_template = template
    model = tiny_model(seed=seed, vocab_size=len(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "training_args.bin").write_bytes(b"\x80\x04cnot_a_module\nboom\n.")  # never unpickled
    (path / "trainer_state.json").write_text('{"global_step": 10}', encoding="utf-8")
    return path


def test_a_folder_without_chat_template_or_sampler_config_chats_with_dllm_defaults(
    tmp_path, caplog
):
    folder = dllm_folder(tmp_path / "dllm")
    with caplog.at_level(logging.WARNING):
        model, tokenizer = load_model(str(folder), device="cpu")
        config = SamplerConfig.from_pretrained(folder, max_new_tokens=32)
    assert tokenizer.chat_template == DLLM_BERT_CHAT_TEMPLATE
    template_lines = [r for r in caplog.records if "has no chat template" in r.getMessage()]
    assert len(template_lines) == 1  # announced once, in one line
    assert config == SamplerConfig.paper(32)
    assert "using the paper's sampler settings" in caplog.text
    session = ChatSession(model, tokenizer, config, generator=torch.Generator().manual_seed(0))
    reply = session.ask("merhaba nasılsın ?")
    assert isinstance(reply, str) and session.history[-1] == {"role": "assistant", "content": reply}
    text = tokenizer.decode(prompt_ids(tokenizer, "merhaba"))
    assert text.startswith("[Question]") and text.rstrip().endswith("[Answer]")


def test_a_template_saved_with_the_tokenizer_is_used_as_it_is(tmp_path, caplog):
    own = (
        "{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
        "{% if add_generation_prompt %}[Answer]{% endif %}"
    )
    folder = dllm_folder(tmp_path / "own", template=own)
    with caplog.at_level(logging.WARNING):
        _, tokenizer = load_model(str(folder), device="cpu")
    assert tokenizer.chat_template == own and "has no chat template" not in caplog.text
    _, replaced = load_model(str(folder), device="cpu", chat_template=DLLM_BERT_CHAT_TEMPLATE)
    assert replaced.chat_template == DLLM_BERT_CHAT_TEMPLATE


def test_the_end_marker_trims_answers_whether_or_not_it_is_a_special_token():
    plain = word_tokenizer()
    special = word_tokenizer()
    special.add_special_tokens({"additional_special_tokens": ["[/Answer]"]})
    for tokenizer in (plain, special):
        ids = tokenizer.convert_tokens_to_ids(["evet", "[/Answer]", "hayır", "çay"])
        assert trim(tokenizer, ids) == "evet"


def lora_files(folder, base_dir, model, *, alpha=16, rslora=False, extra=None, **config):
    """An adapter folder in PEFT's format for ``model``: LoRA on every attention Wqkv and MLP Wi
    and Wo, random A and B; returns the tensors so a test can merge them by hand."""
    torch.manual_seed(3)
    tensors = {}
    for name, module in model.named_modules():
        if name.endswith(("attn.Wqkv", "mlp.Wi", "mlp.Wo")):
            rank = 2 if name.endswith("Wo") else 4
            tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(
                rank, module.in_features
            )
            tensors[f"base_model.model.{name}.lora_B.weight"] = 0.1 * torch.randn(
                module.out_features, rank
            )
    tensors.update(extra or {})
    folder.mkdir()
    save_file(tensors, folder / "adapter_model.safetensors")
    settings = {
        "peft_type": "LORA",
        "base_model_name_or_path": str(base_dir),
        "r": 4,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "target_modules": ["Wqkv", "Wi", "Wo"],
        "rank_pattern": {"mlp.Wo": 2},
        "alpha_pattern": {"mlp.Wo": 8},
        **config,
    }
    (folder / "adapter_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return tensors


def merged_by_hand(model, tensors, *, alpha, rslora):
    merged = {name: p.detach().clone() for name, p in model.named_parameters()}
    for key, a in tensors.items():
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                merged[key.removeprefix("base_model.model.")] = a
            continue
        module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        b = tensors[key.replace("lora_A", "lora_B")]
        rank, scale_alpha = a.shape[0], (8 if module.endswith("mlp.Wo") else alpha)
        scale = scale_alpha / (math.sqrt(rank) if rslora else rank)
        merged[f"{module}.weight"] += b @ a * scale
    return merged


@pytest.mark.parametrize("rslora", [False, True], ids=["lora", "rslora"])
def test_an_adapter_folder_is_merged_into_its_base_exactly_as_peft_would(tmp_path, rslora):
    base_dir = dllm_folder(tmp_path / "base", template=DLLM_BERT_CHAT_TEMPLATE)
    base, _ = load_model(str(base_dir), device="cpu")
    head = {"base_model.model.head.dense.weight": torch.randn_like(base.head.dense.weight)}
    tensors = lora_files(tmp_path / "adapter", base_dir, base, rslora=rslora, extra=head)
    merged, tokenizer = load_model(str(tmp_path / "adapter"), device="cpu")
    expected = merged_by_hand(base, tensors, alpha=16, rslora=rslora)
    got = dict(merged.named_parameters())
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert torch.equal(got["head.dense.weight"], head["base_model.model.head.dense.weight"])
    ids = torch.tensor([prompt_ids(tokenizer, "merhaba")])
    config = SamplerConfig(steps=8, max_new_tokens=8, block_length=4)
    changed = generate(merged, ids, config, mask_token_id=tokenizer.mask_token_id)
    assert not torch.equal(changed, generate(base, ids, config, mask_token_id=4))  # it matters
    assert SamplerConfig.from_pretrained(tmp_path / "adapter") == SamplerConfig.paper()


def test_an_adapter_with_its_own_relative_base_and_sampler_settings(tmp_path, monkeypatch):
    base_dir = dllm_folder(tmp_path / "base", template=DLLM_BERT_CHAT_TEMPLATE)
    SamplerConfig(steps=16, max_new_tokens=16, block_length=8).save_pretrained(base_dir)
    base, _ = load_model(str(base_dir), device="cpu")
    lora_files(tmp_path / "adapter", "../base", base)
    monkeypatch.chdir(tmp_path.parent)  # "../base" resolves beside the adapter, not from here
    load_model(str(tmp_path / "adapter"), device="cpu")  # the base is found
    assert SamplerConfig.from_pretrained(tmp_path / "adapter").block_length == 8  # the base's


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"base_model_name_or_path": "/nowhere/base"},
            "the base model folder /nowhere/base of the adapter .* is not found",
        ),
        ({"use_dora": True}, "DoRA adapter"),
        ({"peft_type": "IA3"}, "is a IA3 adapter; only LoRA"),
        ({"base_model_name_or_path": ""}, "names no base model"),
    ],
)
def test_adapters_that_cannot_be_merged_are_one_line_errors(tmp_path, change, message):
    base_dir = dllm_folder(tmp_path / "base", template=DLLM_BERT_CHAT_TEMPLATE)
    base, _ = load_model(str(base_dir), device="cpu")
    lora_files(tmp_path / "adapter", base_dir, base)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(SampleError, match=message) as info:
        load_model(str(tmp_path / "adapter"), device="cpu")
    assert "\n" not in str(info.value)


def test_an_adapter_saved_as_pickle_is_never_loaded(tmp_path):
    base_dir = dllm_folder(tmp_path / "base", template=DLLM_BERT_CHAT_TEMPLATE)
    base, _ = load_model(str(base_dir), device="cpu")
    lora_files(tmp_path / "adapter", base_dir, base)
    (tmp_path / "adapter" / "adapter_model.safetensors").rename(
        tmp_path / "adapter" / "adapter_model.bin"
    )
    with pytest.raises(SampleError, match=r"adapter_model\.bin \(pickle\), which is never loaded"):
        load_model(str(tmp_path / "adapter"), device="cpu")
