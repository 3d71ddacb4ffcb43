"""diffutron-data: Turkish corpora and instruction sets for Diffutron.

The data stage's entry point is :func:`prepare_data`, taking a frozen :class:`CPTDataSpec` (the
continual pre-training corpus) or :class:`SFTDataSpec` (instruction-tuning rows); the ``tiny``
preset is the embedded data, offline, and ``paper`` the published recipe. Below it:

* :func:`build_cpt_corpus` - filter, sample, shuffle, tokenise and save a corpus with a manifest,
  from local files or Hub datasets, streaming; :func:`build_sft_dataset` - instruction sets
  (Alpaca, InstrucTurca, chat messages) rendered with dLLM's BERT chat template into
  response-only maskable rows.
* :func:`load_prepared` / :func:`read_manifest` - data a ``prepare`` made, checked;
  :func:`data_argument` - what a ``--data`` value is (a prepared folder, a file, a Hub id).
* :func:`pack_documents`, :func:`packed_rows` (lazily, from the plan ``prepare`` stores),
  :class:`CPTCollator`, :class:`SFTCollator` - batching that wastes little.
* :class:`Source`, :func:`iter_texts`, :func:`iter_rows`, :func:`iter_conversations` - readers.
* The embedded data (:func:`corpus_documents`, :func:`corpus_split`, :func:`corpus_sentences`,
  :func:`instruction_conversations`), the synthetic tasks (:func:`make_task_rows`) and
  :func:`load_tokenizer` (``"tiny"`` is the embedded tokenizer).
"""

from importlib.metadata import version

from diffutron_data.build import data_argument, load_prepared, manifest_fingerprint, read_manifest
from diffutron_data.chat import (
    DLLM_BERT_CHAT_TEMPLATE,
    END_MARKER,
    render_chat,
    split_prompt_response,
)
from diffutron_data.collate import CPTCollator, SFTCollator
from diffutron_data.corpus import Pool, build_cpt_corpus, cpt_recipe
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.instructions import (
    detect_schema,
    instruction_conversations,
    iter_conversations,
    row_to_messages,
)
from diffutron_data.packing import (
    PackedRows,
    pack_documents,
    pack_lengths,
    packed_rows,
    padding_fraction,
)
from diffutron_data.presets import cpt_preset, sft_preset
from diffutron_data.readers import corpus_documents, corpus_split, iter_rows, iter_texts
from diffutron_data.sft import build_sft_dataset, encode_example, sft_recipe
from diffutron_data.sources import Source
from diffutron_data.specs import CPTDataSpec, CPTPlan, SFTDataSpec, SFTPlan, prepare_data
from diffutron_data.synthetic import INSTRUCTIONS, TASKS, corpus_sentences, make_task_rows
from diffutron_data.tokenizer import SPECIAL_TOKENS, build_tiny_tokenizer, load_tokenizer

__version__ = version("diffutron-data")

__all__ = [
    "DLLM_BERT_CHAT_TEMPLATE",
    "END_MARKER",
    "INSTRUCTIONS",
    "SPECIAL_TOKENS",
    "TASKS",
    "CPTCollator",
    "CPTDataSpec",
    "CPTPlan",
    "DataError",
    "PackedRows",
    "Pool",
    "ReadReport",
    "SFTCollator",
    "SFTDataSpec",
    "SFTPlan",
    "Source",
    "__version__",
    "build_cpt_corpus",
    "build_sft_dataset",
    "build_tiny_tokenizer",
    "corpus_documents",
    "corpus_sentences",
    "corpus_split",
    "cpt_preset",
    "cpt_recipe",
    "data_argument",
    "detect_schema",
    "encode_example",
    "instruction_conversations",
    "iter_conversations",
    "iter_rows",
    "iter_texts",
    "load_prepared",
    "load_tokenizer",
    "make_task_rows",
    "manifest_fingerprint",
    "pack_documents",
    "pack_lengths",
    "packed_rows",
    "padding_fraction",
    "prepare_data",
    "read_manifest",
    "render_chat",
    "row_to_messages",
    "sft_preset",
    "sft_recipe",
    "split_prompt_response",
]
