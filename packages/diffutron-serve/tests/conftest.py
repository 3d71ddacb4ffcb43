"""A saved tiny model (word-level tokenizer with dLLM's chat format, a seeded 2-layer ModernBERT)
and the real server around it: uvicorn on 127.0.0.1, a free port, in a background thread
(``diffutron_serve.serve_in_thread``)."""

from __future__ import annotations

import pytest
import torch

WORDS = (
    "[Question] [/Question] [Answer] [/Answer] kedi köpek kuş balık ev okul yol deniz dağ "
    "su çay ekmek elma bir iki üç dört beş evet hayır merhaba selam günaydın iyi güzel büyük "
    "küçük ve ile ama ne nasıl ? . ,"
).split()


def build_model_dir(path, *, seed: int = 0, positions: int = 96):
    """A model folder as diffutron-train exports it: safetensors weights, a tokenizer with a chat
    template and mmBERT's special ids (pad 0, eos 1, bos 2, unk 3, mask 4)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

    from diffutron_common.chat import DLLM_BERT_CHAT_TEMPLATE

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(specials + WORDS)}, "<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    tokenizer.chat_template = DLLM_BERT_CHAT_TEMPLATE
    config = ModernBertConfig(
        vocab_size=len(specials) + len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=positions,
        local_attention=16,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        cls_token_id=2,
        sep_token_id=1,
    )
    torch.manual_seed(seed)
    ModernBertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "sampler_config.json").write_text(
        '{"steps": 16, "max_new_tokens": 16, "block_length": 8, "temperature": 0.0}\n'
    )
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return build_model_dir(tmp_path_factory.mktemp("model"))


def start_server(app):
    """``(running server, stop)``: ``app`` served by uvicorn on 127.0.0.1 in a thread."""
    from diffutron_serve import serve_in_thread

    running = serve_in_thread(app)
    return running, running.stop


@pytest.fixture(scope="session")
def server(model_dir):
    from diffutron_serve import create_app

    running, stop = start_server(create_app(str(model_dir), max_batch=8, max_queue=64))
    yield running
    stop()


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
