"""The embedded default data: a Turkish corpus and instruction set written for this project.

Everything here ships inside the wheel and needs no network: the corpus (four genres, one
document a paragraph), the Alpaca-schema instruction set, a list of nouns for the plural task, and
the tiny-preset tokenizer built from them (:mod:`diffutron_data.tokenizer`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from diffutron_data.errors import ReadReport
from diffutron_data.instructions import iter_conversations
from diffutron_data.sources import Source, iter_texts

RESOURCES = Path(__file__).parent / "resources"
HELDOUT_EVERY = 10
"""Every 10th corpus document (by position) is held out for evaluation."""


def corpus_paths() -> list[Path]:
    """The corpus files, one genre each, in a fixed order."""
    return sorted((RESOURCES / "corpus").glob("*.txt"))


def corpus_sources() -> list[Source]:
    return [Source(str(path), mode="paragraph") for path in corpus_paths()]


def instruction_source() -> Source:
    return Source(str(RESOURCES / "instructions.jsonl"))


@lru_cache(maxsize=1)
def corpus_documents() -> tuple[str, ...]:
    """Every corpus document (a paragraph), genre files in order."""
    report = ReadReport()
    return tuple(text for source in corpus_sources() for text, _ in iter_texts(source, report))


def corpus_split() -> tuple[list[str], list[str]]:
    """``(train, heldout)``: every :data:`HELDOUT_EVERY`-th document is held out."""
    documents = corpus_documents()
    train = [d for i, d in enumerate(documents) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    heldout = [d for i, d in enumerate(documents) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    return train, heldout


def instruction_conversations() -> list[list[dict[str, str]]]:
    """The embedded instruction set as chat conversations."""
    report = ReadReport()
    return [messages for messages, _ in iter_conversations(instruction_source(), report)]


def nouns() -> list[str]:
    """Common Turkish nouns with regular plurals (for the synthetic plural task)."""
    text = (RESOURCES / "nouns.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”»)]*\s+(?=[\"'“«(\-–—]*[A-ZÇĞİÖŞÜ0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``, ``!``, ``?`` or ``…`` when space and a capital follow."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def corpus_sentences(*, heldout: bool = False) -> list[str]:
    """Sentences of the training (or held-out) corpus documents."""
    train, held = corpus_split()
    return [s for doc in (held if heldout else train) for s in split_sentences(doc)]
