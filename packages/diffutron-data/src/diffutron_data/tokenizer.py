"""Tokenizers: loading by name or path, and the tiny-preset tokenizer built from embedded data.

The tiny tokenizer mirrors mmBERT's conventions: ``<pad>``=0, ``<eos>``=1, ``<bos>``=2,
``<unk>``=3, ``<mask>``=4; a single sequence is encoded as ``<bos> … <eos>``; the chat template is
dLLM's BERT template. It is byte-level BPE (no text is ever unknown) trained with ``tokenizers``
on the embedded corpus and instruction set, deterministically.
"""

from __future__ import annotations

from pathlib import Path

from diffutron_common import DiffutronError, check_model_source
from diffutron_data import embedded
from diffutron_data.chat import DLLM_BERT_CHAT_TEMPLATE, render_chat
from diffutron_data.errors import DataError, load_error
from diffutron_data.instructions import instruction_conversations
from diffutron_data.readers import corpus_documents

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
TINY = "tiny"
"""Name that :func:`load_tokenizer` resolves to the embedded tiny tokenizer."""
TINY_VOCAB_SIZE = 4096


def tiny_tokenizer_path() -> Path:
    return embedded.tokenizer_path()


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False):
    """A fast HF tokenizer from a Hub id, a local directory, or ``"tiny"`` (embedded).

    Raises :class:`DataError` with one line when it cannot be loaded (e.g. offline and not cached).
    """
    from transformers import AutoTokenizer

    target = str(tiny_tokenizer_path()) if name_or_path == TINY else name_or_path
    try:
        check_model_source(target, what="tokenizer")
    except DiffutronError as exc:
        raise DataError(str(exc)) from None
    try:
        return AutoTokenizer.from_pretrained(target, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises OSError, ValueError, HF errors…
        raise load_error(
            f"tokenizer {name_or_path!r}",
            exc,
            offline_hint="HF_HUB_OFFLINE is set: only tokenizers already cached or on disk load",
        ) from None


def tiny_training_texts() -> list[str]:
    """What the tiny tokenizer learns from: corpus documents, then rendered conversations."""
    return [*corpus_documents(), *(render_chat(c) for c in instruction_conversations())]


def build_tiny_tokenizer(output_dir: str | Path, *, vocab_size: int = TINY_VOCAB_SIZE):
    """Train the tiny byte-level BPE tokenizer and save it as a HF tokenizer directory."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tiny_training_texts(), trainer=trainer)
    bos, eos = tokenizer.token_to_id("<bos>"), tokenizer.token_to_id("<eos>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        pair="<bos> $A <eos> $B <eos>",
        special_tokens=[("<bos>", bos), ("<eos>", eos)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )
    fast.chat_template = DLLM_BERT_CHAT_TEMPLATE
    fast.save_pretrained(str(output_dir))
    return fast
