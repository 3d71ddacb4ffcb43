import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAD, EOS, BOS, UNK, MASK = 0, 1, 2, 3, 4
VOCAB = 48


def tiny_model(
    seed: int = 0,
    *,
    vocab_size: int = VOCAB,
    max_positions: int = 128,
    local_attention: int = 16,
    layers: int = 3,
):
    """A random ModernBertForMaskedLM small enough for exact, fast tests (peaked logits)."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=layers,
        num_attention_heads=2,
        max_position_embeddings=max_positions,
        global_attn_every_n_layers=2,
        local_attention=local_attention,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=BOS,
        cls_token_id=BOS,
        sep_token_id=EOS,
        initializer_range=0.3,
        attn_implementation="sdpa",
    )
    return ModernBertForMaskedLM(config).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def word_tokenizer(words=None):
    """A small word-level HF tokenizer with mmBERT's special ids and dLLM's chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    words = (
        words
        or (
            "[Question] [/Question] [Answer] [/Answer] merhaba selam nasılsın iyiyim teşekkürler "
            "bugün hava çok güzel ve ben sen o biz kedi köpek ev okul su çay bir iki üç evet hayır "
            "ne ? . ,"
        ).split()
    )
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    fast.chat_template = (
        "{% for m in messages %}"
        "{% if m['role'] == 'user' %}[Question] {{ m['content'] }} [/Question] "
        "{% elif m['role'] == 'assistant' %}[Answer] {{ m['content'] }} [/Answer] {% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}[Answer] {% endif %}"
    )
    return fast


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved tiny model directory (safetensors, tokenizer with chat template)."""
    tokenizer = word_tokenizer()
    model = tiny_model(seed=1, vocab_size=len(tokenizer))
    path = tmp_path_factory.mktemp("model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
