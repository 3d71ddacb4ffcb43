"""Continual pre-training (the paper's §4): LoRA on a masked-LM backbone, masked-LM objective.

``run_cpt`` resolves a :class:`CPTRun` (``tiny`` or ``paper`` preset, any field overridable),
builds or reuses the corpus (diffutron-data), trains with :func:`~diffutron_train.loop.train_loop`
(resumable, atomic checkpoints) and exports a merged, plain Hugging Face model directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffutron_data import (
    CPTCollator,
    CPTDataSpec,
    data_argument,
    load_tokenizer,
    packed_rows,
)
from diffutron_train.errors import TrainError
from diffutron_train.loop import train_and_export
from diffutron_train.lora import PAPER_LORA, apply_lora, count_parameters
from diffutron_train.models import (
    MMBERT_BASE,
    build_model,
    check_fits,
    load_masked_lm,
    model_config,
    model_positions,
    tokenizer_source,
)
from diffutron_train.rundata import data_length, open_run
from diffutron_train.runs import undo_if_failed
from diffutron_train.settings import LoopSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CPTRun:
    preset: str = "tiny"
    model: str | None = None
    tokenizer: str | None = None
    data: str | None = None
    sources: list[str] = field(default_factory=list)
    output_dir: str = "runs/cpt-tiny"
    max_length: int | None = None
    pack: bool = True
    num_proc: int = 1
    lora: dict[str, Any] | None = field(default_factory=lambda: dict(PAPER_LORA))
    """LoRA settings; None trains every weight (the tiny preset: a random backbone has no
    knowledge to protect, and frozen random weights barely learn)."""
    loop: LoopSettings = field(default_factory=LoopSettings)
    trust_remote_code: bool = False
    """Let a model or tokenizer from the Hub run its own code (off: safetensors and built-in
    classes only)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESET_LOOPS = {
    # The paper: per-device batch 64 x accumulation 2, 4 epochs, paged AdamW 8-bit, cosine.
    "paper": {
        "batch_size": 64,
        "grad_accum": 2,
        "epochs": 4.0,
        "optimizer": "paged_adamw_8bit",
        "learning_rate": 2e-4,
        "save_every": 1000,
        "log_every": 50,
    },
    # Tiny: a from-scratch 4-layer model, trained whole, learns in minutes at a higher rate.
    "tiny": {
        "batch_size": 16,
        "grad_accum": 1,
        "epochs": 60.0,  # ~540 steps, about 2 minutes on 2 CPU cores
        "optimizer": "adamw",
        "learning_rate": 2e-3,
        "save_every": 100,
        "log_every": 20,
    },
}
PRESET_LORA: dict[str, dict[str, Any] | None] = {"paper": {}, "tiny": None}


def cpt_run(
    preset: str = "tiny",
    *,
    loop: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    use_lora: bool | None = None,
    **fields: Any,
) -> CPTRun:
    """The ``preset``'s run, with any field (and any loop or LoRA setting) overridden;
    ``use_lora`` overrides whether the preset adapts with LoRA or trains every weight."""
    if preset not in PRESET_LOOPS:
        raise TrainError(f"unknown preset {preset!r}; use 'tiny' or 'paper'")
    settings = LoopSettings(**{**PRESET_LOOPS[preset], **(loop or {})})
    wanted = PRESET_LORA[preset] is not None if use_lora is None else use_lora
    adapters = {**PAPER_LORA, **(PRESET_LORA[preset] or {}), **(lora or {})} if wanted else None
    fields.setdefault("output_dir", f"runs/cpt-{preset}")
    fields["data"], extra = data_argument(fields.get("data"), "cpt")
    fields["sources"] = [*extra, *fields.get("sources", [])]
    if fields.get("max_length") is None and not fields.get("data"):
        fields["max_length"] = CPTDataSpec(preset).resolve().max_length
    return CPTRun(preset=preset, lora=adapters, loop=settings, **fields)


def data_spec(run: CPTRun) -> CPTDataSpec:
    """The corpus this run builds when it is given no prepared ``--data``: the preset's, or
    ``sources``; tokenised by the backbone's own tokenizer."""
    tokenizer = run.tokenizer or (tokenizer_source(run.model) if run.model else None)
    return CPTDataSpec(
        run.preset,
        tuple(run.sources),
        tokenizer=tokenizer,
        max_length=run.max_length,
        seed=run.loop.seed,
    )


def build_backbone(run: CPTRun, tokenizer, *, device: str | None = None):
    """The model to adapt: a local dir or Hub id, else the preset's (tiny: fresh from config)."""
    if run.model is None and run.preset == "tiny":
        return build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=run.loop.seed)
    if run.model is None and device == "meta":
        return build_model(model_config("paper"), device="meta")
    return load_masked_lm(run.model or MMBERT_BASE, trust_remote_code=run.trust_remote_code)


def describe_cpt_run(run: CPTRun) -> list[str]:
    """Lines describing the resolved run and the trainable parameters, building nothing big
    (the paper preset's backbone is built on the ``meta`` device from mmBERT-base's shape)."""
    if run.preset == "paper" and run.model is None:
        model = build_backbone(run, None, device="meta")
    else:
        name = data_spec(run).resolve().tokenizer_name
        model = build_backbone(run, load_tokenizer(name, trust_remote_code=run.trust_remote_code))
    adapted = apply_lora(model, **run.lora) if run.lora is not None else model
    return [json.dumps(run.to_dict(), indent=2), str(count_parameters(adapted))]


def run_cpt(run: CPTRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train and export; returns the exported model directory (``output_dir/model``). A run
    already finished in ``output_dir`` is not trained again (see :mod:`diffutron_train.runs`)."""
    plan = data_spec(run).resolve()
    tokenizer = load_tokenizer(plan.tokenizer_name, trust_remote_code=run.trust_remote_code)
    if tokenizer.mask_token_id is None:
        raise TrainError(f"tokenizer {plan.tokenizer_name!r} has no mask token")
    check_fits(
        data_length(run.data, "cpt", plan),
        model_positions(run.model, run.preset, trust_remote_code=run.trust_remote_code),
    )
    state, corpus, max_length = open_run(
        run, "cpt", plan, tokenizer, resume=resume, empty="the corpus has no usable rows"
    )
    if state.finished:  # start_run said so
        return state.model
    rows = packed_rows(corpus, max_length) if run.pack else corpus  # lazily, from prepare's plan
    with undo_if_failed(state):
        model = build_backbone(run, tokenizer)
        if run.lora is not None:
            model = apply_lora(model, **run.lora)
    logger.info("%s", count_parameters(model))
    specials = tuple(i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None)
    collate = CPTCollator(pad_token_id=tokenizer.pad_token_id or 0, special_token_ids=specials)
    return train_and_export(model, tokenizer, rows, collate, state, run.loop, stop_after=stop_after)
