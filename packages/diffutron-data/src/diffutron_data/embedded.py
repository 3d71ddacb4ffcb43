"""The embedded default data: a Turkish corpus and instruction set written for this project.

Everything here ships inside the wheel and needs no network: the corpus (four genres, one
document a paragraph), the Alpaca-schema instruction set, a list of nouns for the plural task, and
the tiny-preset tokenizer. This module only knows where they are and the rules that split them; it
imports nothing of this package, so that the readers can use it: the corpus documents come from
:func:`diffutron_data.readers.corpus_documents`, the conversations from
:func:`diffutron_data.instructions.instruction_conversations`, the sentences from
:func:`diffutron_data.synthetic.corpus_sentences`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

RESOURCES = Path(__file__).parent / "resources"
HELDOUT_EVERY = 10
"""Every 10th corpus document (by position) is held out for evaluation."""


def corpus_paths() -> list[Path]:
    """The corpus files, one genre each (documents separated by blank lines), in a fixed order."""
    return sorted((RESOURCES / "corpus").glob("*.txt"))


def instructions_path() -> Path:
    """The instruction set: JSON lines in the Alpaca schema."""
    return RESOURCES / "instructions.jsonl"


def tokenizer_path() -> Path:
    """The tiny preset's tokenizer folder."""
    return RESOURCES / "tokenizer"


def split_heldout(documents: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(train, heldout)``: every :data:`HELDOUT_EVERY`-th document is held out."""
    train = [d for i, d in enumerate(documents) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    heldout = [d for i, d in enumerate(documents) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    return train, heldout


def nouns() -> list[str]:
    """Common Turkish nouns with regular plurals (for the synthetic plural task)."""
    text = (RESOURCES / "nouns.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”»)]*\s+(?=[\"'“«(\-–—]*[A-ZÇĞİÖŞÜ0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``, ``!``, ``?`` or ``…`` when space and a capital follow."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
