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
    load_prepared,
    load_tokenizer,
    manifest_fingerprint,
    pack_documents,
    read_manifest,
)
from diffutron_train.distributed import main_process_first
from diffutron_train.errors import TrainError
from diffutron_train.loop import LoopSettings, train_and_export
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
from diffutron_train.runs import RunState, start_run, undo_if_failed

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


def dry_run(run: CPTRun) -> list[str]:
    """Lines describing the resolved run and the trainable parameters, building nothing big
    (the paper preset's backbone is built on the ``meta`` device from mmBERT-base's shape)."""
    if run.preset == "paper" and run.model is None:
        model = build_backbone(run, None, device="meta")
    else:
        name = data_spec(run).resolve().tokenizer_name
        model = build_backbone(run, load_tokenizer(name, trust_remote_code=run.trust_remote_code))
    adapted = apply_lora(model, **run.lora) if run.lora is not None else model
    return [json.dumps(run.to_dict(), indent=2), str(count_parameters(adapted))]


def run_identity(settings: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
    """What ``run.json`` records of a run: every setting, and the fingerprint of its data
    (:func:`diffutron_train.runs.start_run` compares those that change the result)."""
    return {**settings, "data_fingerprint": data_fingerprint}


def data_fingerprint(run: CPTRun, tokenizer) -> str:
    """What identifies the corpus this run trains on: the prepared folder's manifest
    (``--data``), or the recipe the run would build (sources by content, tokenizer, settings)."""
    if run.data:
        read_manifest(run.data, "cpt")
        return manifest_fingerprint(run.data)
    return data_spec(run).resolve().fingerprint(tokenizer)


def _corpus(run: CPTRun, tokenizer, state: RunState, key: str):
    """The corpus to train on: the prepared ``--data``, or the run's own ``data/``, built (or
    rebuilt) unless it was built from exactly these inputs."""
    if run.data:
        corpus, manifest = load_prepared(run.data, "cpt")
        return corpus, manifest["max_length"]
    plan = data_spec(run).resolve()
    target = state.folder / "data"
    if manifest_fingerprint(target) != key:
        if (target / "manifest.json").is_file():
            logger.info("%s was built from other inputs; rebuilding it", target)
        plan.build(tokenizer, target, num_proc=run.num_proc, overwrite=True)
    corpus, _ = load_prepared(target, "cpt")
    return corpus, plan.max_length


def run_cpt(run: CPTRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train and export; returns the exported model directory (``output_dir/model``). A run
    already finished in ``output_dir`` is not trained again (see :mod:`diffutron_train.runs`)."""
    plan = data_spec(run).resolve()
    tokenizer = load_tokenizer(plan.tokenizer_name, trust_remote_code=run.trust_remote_code)
    if tokenizer.mask_token_id is None:
        raise TrainError(f"tokenizer {plan.tokenizer_name!r} has no mask token")
    check_fits(
        read_manifest(run.data, "cpt")["max_length"] if run.data else plan.max_length,
        model_positions(run.model, run.preset, trust_remote_code=run.trust_remote_code),
    )
    with main_process_first():  # rank 0 claims the folder and builds the corpus; the others reuse
        key = data_fingerprint(run, tokenizer)
        state = start_run(run_identity(run.to_dict(), key), run.output_dir, resume=resume)
        if not state.finished:
            with undo_if_failed(state):
                corpus, max_length = _corpus(run, tokenizer, state, key)
                if len(corpus) == 0:
                    raise TrainError("the corpus has no usable rows")
    if state.finished:  # start_run said so
        return state.model
    rows = pack_documents(corpus, max_length) if run.pack else corpus
    with undo_if_failed(state):
        model = build_backbone(run, tokenizer)
        if run.lora is not None:
            model = apply_lora(model, **run.lora)
    logger.info("%s", count_parameters(model))
    specials = tuple(i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None)
    collate = CPTCollator(pad_token_id=tokenizer.pad_token_id or 0, special_token_ids=specials)
    return train_and_export(
        model,
        tokenizer,
        rows,
        collate,
        state.folder,
        run.loop,
        resume=state.resume,
        stop_after=stop_after,
        on_start=state.commit,
        run_id=state.run_id,
    )
