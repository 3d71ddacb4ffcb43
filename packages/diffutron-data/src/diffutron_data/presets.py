"""The two scales every command runs at: ``paper`` (the published recipe) and ``tiny`` (offline).

Hub ids and columns verified against the datasets' cards (2026-11): Turkish Wikipedia
``wikimedia/wikipedia`` config ``20231101.tr`` (column ``text``, 534,988 rows);
``turkish-nlp-suite/Havadis`` (news, column ``text``); ``turkish-nlp-suite/temiz-OSCAR`` (cleaned
OSCAR, column ``text``); ``metunlp/LlamaTurk-Instruction-Set`` (Alpaca schema);
``turkish-nlp-suite/InstrucTurca`` (columns ``Input``, ``Output``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diffutron_data.corpus import Pool
from diffutron_data.errors import DataError
from diffutron_data.instructions import instruction_source
from diffutron_data.sources import Source

PRESETS = ("tiny", "paper")


@dataclass(frozen=True)
class CPTPreset:
    tokenizer: str
    max_length: int
    pools: list[Pool] = field(default_factory=list)


@dataclass(frozen=True)
class SFTPreset:
    tokenizer: str
    max_length: int
    sources: list[Source] = field(default_factory=list)
    synthetic_per_task: int = 0
    synthetic_tasks: tuple[str, ...] = ()
    """Which synthetic tasks (:data:`diffutron_data.synthetic.TASKS`) to add."""


def cpt_preset(name: str) -> CPTPreset:
    if name == "paper":
        return CPTPreset(
            tokenizer="jhu-clsp/mmBERT-base",
            max_length=512,
            pools=[
                Pool(
                    "wikipedia",
                    [Source("wikimedia/wikipedia", hub=True, config="20231101.tr")],
                ),
                Pool(
                    "web_news",
                    [
                        Source("turkish-nlp-suite/Havadis", hub=True),
                        Source("turkish-nlp-suite/temiz-OSCAR", hub=True),
                    ],
                    sample_size=1_600_000,
                ),
            ],
        )
    if name == "tiny":
        return CPTPreset(
            tokenizer="tiny",
            max_length=256,  # every embedded document fits (longest: 207 tokens)
            pools=[Pool("embedded", [Source("embedded:corpus-train")])],
        )
    raise DataError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


def sft_preset(name: str, stage: int = 1) -> SFTPreset:
    if stage not in (1, 2):
        raise DataError(f"stage must be 1 or 2, got {stage}")
    if name == "paper":
        dataset = (
            "metunlp/LlamaTurk-Instruction-Set" if stage == 1 else "turkish-nlp-suite/InstrucTurca"
        )
        return SFTPreset(
            tokenizer="jhu-clsp/mmBERT-base", max_length=256, sources=[Source(dataset, hub=True)]
        )
    if name == "tiny":
        # The three graded tasks the demo measures: a classification, an extraction and a
        # transformation. Rows of at most 64 tokens keep the pad tail short, so a from-scratch
        # model spends its CPU minutes on the answers.
        return SFTPreset(
            tokenizer="tiny",
            max_length=64,
            sources=[instruction_source()],
            synthetic_per_task=300,
            synthetic_tasks=("is_question", "first_word", "repeat"),
        )
    raise DataError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
