"""A model folder shaped exactly like the paper's released checkpoints (mmBERT-base: 22 layers,
hidden 768, a 128-token local window with global attention every third layer, 256,000 tokens,
its special tokens), random weights, saved the way dLLM's trainer saves one (no chat template, no
sampler_config.json, a pickled training_args.bin beside): chat, generate, infill, perplexity and
one bench task run on it end to end. This is about shapes, names and formats, not quality."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

from diffutron_cli.evaluate import evaluate
from diffutron_cli.sample import sample

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]  # mmBERT's ids 0..4


def mmbert_tokenizer(vocab_size: int):
    """A word-level tokenizer with mmBERT's special tokens and ids, the words of the embedded
    corpus, and filler up to mmBERT's 256,000 entries; ``<bos> … <eos>`` around a text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from diffutron_data import corpus_documents

    words = sorted({w for d in corpus_documents() for w in re.findall(r"\w+|[^\w\s]", d)})
    words += ["[Question]", "[/Question]", "[Answer]", "[/Answer]", "[", "]", "/"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*SPECIALS, *words]))}
    for i in range(len(vocab), vocab_size):
        vocab[f"<unused{i}>"] = i
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    core.decoder = decoders.WordPiece(prefix="##")
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<bos>",
        sep_token="<eos>",
    )


@pytest.fixture(scope="module")
def mmbert_folder(tmp_path_factory):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from diffutron_train import MMBERT_BASE_CONFIG

    folder = tmp_path_factory.mktemp("mmbert-shaped")
    config = ModernBertConfig(**MMBERT_BASE_CONFIG)
    tokenizer = mmbert_tokenizer(config.vocab_size)
    assert len(tokenizer) == 256_000 and tokenizer.mask_token_id == 4
    torch.manual_seed(0)
    model = ModernBertForMaskedLM(config)
    assert sum(p.numel() for p in model.parameters()) == 307_786_240  # the published count
    model.save_pretrained(folder)  # what transformers' Trainer.save_model writes
    tokenizer.save_pretrained(folder)
    (folder / "training_args.bin").write_bytes(b"\x80\x04cnot_a_module\nboom\n.")  # a pickle
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}), encoding="utf-8")
    del model
    assert not (folder / "sampler_config.json").exists()
    assert "chat_template" not in json.loads((folder / "tokenizer_config.json").read_text())
    return folder


def invoke(app, *args, **kwargs):
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


SHORT = ["--max-new-tokens", "8", "--steps", "8", "--block-length", "8"]


@pytest.mark.slow
def test_chat_generate_and_infill(mmbert_folder, caplog):
    chat = invoke(sample, "chat", "--model", mmbert_folder, *SHORT, input="Merhaba!\n/quit\n")
    assert chat.stdout.count("model> ") == 1
    assert "has no chat template: using dLLM's BERT chat format" in caplog.text
    assert "using the paper's sampler settings" in caplog.text  # and it says so
    generated = invoke(sample, "generate", "--model", mmbert_folder, "--prompt", "Selam", *SHORT)
    assert len(generated.stdout.splitlines()) == 1
    filled = invoke(
        sample, "infill", "--model", mmbert_folder, "--text", "Bugün hava <mask> güzel .", *SHORT
    )
    assert filled.stdout.startswith("Bugün hava") and "<mask>" not in filled.stdout


@pytest.mark.slow
def test_perplexity_and_a_bench_task(mmbert_folder, tmp_path):
    text = tmp_path / "texts.txt"
    text.write_text("Bugün hava çok güzel .\nKediler süt içer .\n", encoding="utf-8")
    ppl = invoke(
        evaluate, "perplexity", "--model", mmbert_folder, "--data", text, "--max-length", 32
    )
    assert re.search(r"pseudo-perplexity [0-9.]+ \(\d+ tokens scored in 2 windows", ppl.output)
    rows = tmp_path / "xcopa.jsonl"
    row = {
        "premise": "Adam kolunu kırdı.",
        "choice1": "Hastaneye gitti.",
        "choice2": "Sinemaya gitti.",
        "question": "effect",
        "label": 0,
    }
    rows.write_text("\n".join([json.dumps(row), json.dumps({**row, "label": 1})]) + "\n", "utf-8")
    out = tmp_path / "bench"
    args = ["--tasks", "xcopa_tr", "--data-files", f"xcopa_tr={rows}", "--limit", 2]
    invoke(
        evaluate,
        "bench",
        "--model",
        mmbert_folder,
        *args,
        "--mc-num",
        1,
        "--batch-size",
        4,
        "--output-dir",
        out,
    )
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["n-samples"]["xcopa_tr"]["effective"] == 2  # both rows were scored
    assert results["results"]["xcopa_tr"]["acc,none"] in (0.0, 0.5, 1.0)
