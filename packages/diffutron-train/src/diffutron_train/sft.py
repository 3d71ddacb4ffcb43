"""Instruction tuning with the MDLM objective (the paper's §5, dLLM's BERT recipe), in two stages.

Full fine-tuning of a masked LM on chat-formatted rows whose response (with its end marker and,
by default, the pad tail) is the only maskable part; ``diffutron_core.mdlm_loss`` with per-sequence
normalisation. The exported directory carries the chat template in its tokenizer and the sampler
defaults in ``sampler_config.json``, so ``diffutron-sample chat --model DIR`` works as it is.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffutron_core import PAPER_SAMPLER
from diffutron_data import (
    DLLM_BERT_CHAT_TEMPLATE,
    SFTCollator,
    SFTDataSpec,
    data_argument,
    load_tokenizer,
)
from diffutron_train.errors import TrainError
from diffutron_train.loop import train_and_export
from diffutron_train.lora import count_parameters
from diffutron_train.models import (
    build_model,
    check_fits,
    load_masked_lm,
    model_config,
    tokenizer_source,
)
from diffutron_train.rundata import data_length, open_run
from diffutron_train.settings import LoopSettings

logger = logging.getLogger(__name__)

# diffutron-sample reads these from sampler_config.json (its SamplerConfig field names).
TINY_SAMPLER = {**PAPER_SAMPLER, "steps": 64, "max_new_tokens": 64}

PRESET_LOOPS = {
    ("paper", 1): {
        "epochs": 20.0,
        "batch_size": 16,
        "learning_rate": 1e-4,
        "save_every": 500,
        "log_every": 50,
    },
    ("paper", 2): {
        "epochs": 8.0,
        "batch_size": 96,
        "learning_rate": 1e-4,
        "save_every": 500,
        "log_every": 50,
    },
    # Tiny: a from-scratch model needs ~2,500 steps to condition on the prompt (measured: the
    # is-question answer went from chance to 95% right between 660 and 2,600 steps).
    ("tiny", 1): {
        "epochs": 35.0,
        "batch_size": 16,
        "learning_rate": 2e-3,
        "save_every": 250,
        "log_every": 50,
    },
    ("tiny", 2): {
        "epochs": 10.0,
        "batch_size": 16,
        "learning_rate": 5e-4,
        "save_every": 250,
        "log_every": 50,
    },
}


@dataclass(frozen=True)
class SFTRun:
    preset: str = "tiny"
    stage: int = 1
    model: str | None = None
    data: str | None = None
    sources: list[str] = field(default_factory=list)
    schema: str = "auto"
    synthetic: int | None = None
    synthetic_tasks: list[str] | None = None
    """Synthetic tasks to add (``synthetic`` rows each); None or empty: the preset's, or every
    task when the preset names none (``synthetic=0`` adds none)."""
    output_dir: str = "runs/sft-tiny-stage1"
    max_length: int | None = None
    pad_tail: bool = True
    num_proc: int = 1
    loop: LoopSettings = field(default_factory=LoopSettings)
    trust_remote_code: bool = False
    """Let a model or tokenizer from the Hub run its own code (off by default)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sft_run(
    preset: str = "tiny", stage: int = 1, *, loop: dict[str, Any] | None = None, **fields: Any
) -> SFTRun:
    """The preset's stage, with any field or loop setting overridden (the objective is MDLM)."""
    if (preset, stage) not in PRESET_LOOPS:
        raise TrainError(
            f"unknown preset/stage {preset!r}/{stage}; presets tiny, paper; stages 1, 2"
        )
    values = {**PRESET_LOOPS[(preset, stage)], "objective": "mdlm", **(loop or {})}
    fields.setdefault("output_dir", f"runs/sft-{preset}-stage{stage}")
    fields["data"], extra = data_argument(fields.get("data"), "sft")
    fields["sources"] = [*extra, *fields.get("sources", [])]
    if not fields.get("data"):  # run.json records the preset's choices it trains with
        plan = SFTDataSpec(
            preset,
            stage,
            synthetic=fields.get("synthetic"),
            synthetic_tasks=tuple(fields.get("synthetic_tasks") or ()),
        ).resolve()
        if fields.get("max_length") is None:
            fields["max_length"] = plan.max_length
        fields["synthetic"] = plan.synthetic_per_task
        fields["synthetic_tasks"] = list(plan.synthetic_tasks)
    return SFTRun(preset=preset, stage=stage, loop=LoopSettings(**values), **fields)


def _model_and_tokenizer(run: SFTRun):
    if run.model is None:
        if run.preset != "tiny":
            raise TrainError(
                f"stage {run.stage} of the paper starts from a model: pass --model (stage 1: the "
                "CPT output; stage 2: stage 1's)"
            )
        tokenizer = load_tokenizer("tiny")
        model = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=run.loop.seed)
    else:
        tokenizer = load_tokenizer(
            tokenizer_source(run.model), trust_remote_code=run.trust_remote_code
        )
        model = load_masked_lm(run.model, trust_remote_code=run.trust_remote_code)
    if tokenizer.mask_token_id is None:
        raise TrainError(f"the tokenizer of {run.model or 'the tiny preset'} has no mask token")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DLLM_BERT_CHAT_TEMPLATE
    return model, tokenizer


def data_spec(run: SFTRun) -> SFTDataSpec:
    """The rows this run builds when it is given no prepared ``--data``: the preset stage's
    sources (or ``sources``) and synthetic tasks, tokenised by the model's tokenizer."""
    return SFTDataSpec(
        run.preset,
        run.stage,
        tuple(run.sources),
        schema=run.schema,
        synthetic=run.synthetic,
        synthetic_tasks=tuple(run.synthetic_tasks or ()),
        tokenizer=run.model,
        max_length=run.max_length,
        seed=run.loop.seed,
    )


def run_sft(run: SFTRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train one SFT stage and export ``output_dir/model``; returns its path. A run already
    finished in ``output_dir`` is not trained again (see :mod:`diffutron_train.runs`)."""
    model, tokenizer = _model_and_tokenizer(run)
    plan = data_spec(run).resolve()
    check_fits(
        data_length(run.data, "sft", plan),
        getattr(model.config, "max_position_embeddings", None),
    )
    state, rows, max_length = open_run(
        run, "sft", plan, tokenizer, resume=resume, empty="the instruction data has no usable rows"
    )
    if state.finished:  # start_run said so
        return state.model
    logger.info("%s", count_parameters(model))
    collate = SFTCollator(
        pad_token_id=tokenizer.pad_token_id or 0, max_length=max_length, pad_tail=run.pad_tail
    )
    sampler = TINY_SAMPLER if run.preset == "tiny" else dict(PAPER_SAMPLER)
    return train_and_export(
        model,
        tokenizer,
        rows,
        collate,
        state,
        run.loop,
        stop_after=stop_after,
        sampler_config=sampler,
    )
