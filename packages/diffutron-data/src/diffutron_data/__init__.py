"""diffutron-data: Turkish corpora and instruction sets for Diffutron.

* :func:`build_cpt_corpus` - the continual pre-training corpus (filter, sample, shuffle, tokenise,
  save with a manifest), from local files or Hub datasets, streaming.
* :func:`build_sft_dataset` - instruction sets (Alpaca, InstrucTurca, chat messages) rendered with
  dLLM's BERT chat template into response-only maskable rows.
* :func:`pack_documents`, :class:`CPTCollator`, :class:`SFTCollator` - batching that wastes little.
* :mod:`diffutron_data.embedded` and :mod:`diffutron_data.synthetic` - the embedded Turkish data
  and learnable synthetic tasks; :func:`load_tokenizer` (``"tiny"`` is the embedded tokenizer).
"""

from importlib.metadata import version

from diffutron_data.build import load_prepared, manifest_fingerprint, read_manifest
from diffutron_data.chat import (
    DLLM_BERT_CHAT_TEMPLATE,
    END_MARKER,
    render_chat,
    split_prompt_response,
)
from diffutron_data.collate import CPTCollator, SFTCollator
from diffutron_data.corpus import Pool, build_cpt_corpus, cpt_recipe
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.instructions import detect_schema, iter_conversations, row_to_messages
from diffutron_data.packing import pack_documents, pack_lengths, padding_fraction
from diffutron_data.presets import cpt_preset, sft_preset
from diffutron_data.sft import build_sft_dataset, encode_example, sft_recipe
from diffutron_data.sources import Source, iter_rows, iter_texts
from diffutron_data.tokenizer import SPECIAL_TOKENS, build_tiny_tokenizer, load_tokenizer

__version__ = version("diffutron-data")

__all__ = [
    "DLLM_BERT_CHAT_TEMPLATE",
    "END_MARKER",
    "SPECIAL_TOKENS",
    "CPTCollator",
    "DataError",
    "Pool",
    "ReadReport",
    "SFTCollator",
    "Source",
    "__version__",
    "build_cpt_corpus",
    "build_sft_dataset",
    "build_tiny_tokenizer",
    "cpt_preset",
    "cpt_recipe",
    "detect_schema",
    "encode_example",
    "iter_conversations",
    "iter_rows",
    "iter_texts",
    "load_prepared",
    "load_tokenizer",
    "manifest_fingerprint",
    "pack_documents",
    "pack_lengths",
    "padding_fraction",
    "read_manifest",
    "render_chat",
    "row_to_messages",
    "sft_preset",
    "sft_recipe",
    "split_prompt_response",
]
