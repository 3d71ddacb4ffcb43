"""The data stage's entry points: one frozen spec per kind of data, presets resolved here only.

:class:`CPTDataSpec` and :class:`SFTDataSpec` hold what a user chooses (a preset, and any of its
choices overridden); :meth:`~CPTDataSpec.resolve` turns one into a plan with every value filled
in from the preset (:mod:`diffutron_data.presets`). A plan gives the recipe fingerprint that
identifies the data it makes, and :func:`prepare_data` builds it. The ``prepare`` commands and
the training runs (which build their own data when given no prepared folder) both go through
here, so both make the same data from the same choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffutron_data.build import recipe_fingerprint
from diffutron_data.corpus import Pool, build_cpt_corpus, cpt_recipe
from diffutron_data.presets import cpt_preset, sft_preset
from diffutron_data.sft import build_sft_dataset, sft_recipe
from diffutron_data.sources import Source
from diffutron_data.synthetic import (
    TASKS,
    check_tasks,
    embedded_task_rows,
    synthetic_conversations,
)
from diffutron_data.tokenizer import load_tokenizer


class _Plan:
    def recipe(self, tokenizer) -> dict[str, Any]:
        raise NotImplementedError

    def fingerprint(self, tokenizer) -> str:
        """What identifies the data this plan makes (see :func:`recipe_fingerprint`)."""
        return recipe_fingerprint(self.recipe(tokenizer))


@dataclass(frozen=True)
class CPTPlan(_Plan):
    """A CPT corpus with every choice made: what :func:`build_cpt_corpus` takes."""

    pools: tuple[Pool, ...]
    tokenizer_name: str
    max_length: int
    seed: int

    def recipe(self, tokenizer) -> dict[str, Any]:
        return cpt_recipe(
            list(self.pools),
            tokenizer,
            tokenizer_name=self.tokenizer_name,
            max_length=self.max_length,
            seed=self.seed,
        )

    def build(self, tokenizer, output_dir: str | Path, **options: Any) -> dict[str, Any]:
        """Build the corpus into ``output_dir`` (``num_proc``, ``overwrite``); its manifest."""
        return build_cpt_corpus(
            list(self.pools),
            tokenizer,
            output_dir,
            tokenizer_name=self.tokenizer_name,
            max_length=self.max_length,
            seed=self.seed,
            **options,
        )


@dataclass(frozen=True)
class CPTDataSpec:
    """What a continual pre-training corpus is made from: ``preset`` (``tiny``: the embedded
    corpus, offline; ``paper``: the published recipe from the Hub) with any of its choices
    overridden. ``sources`` (source strings, see :meth:`Source.parse`) replace the preset's
    pools by one pool, of which ``sample_size`` documents are kept."""

    preset: str = "tiny"
    sources: tuple[str, ...] = ()
    sample_size: int | None = None
    tokenizer: str | None = None
    max_length: int | None = None
    seed: int = 0

    def resolve(self) -> CPTPlan:
        preset = cpt_preset(self.preset)
        pools = (
            [Pool("sources", [Source.parse(s) for s in self.sources], self.sample_size)]
            if self.sources
            else preset.pools
        )
        return CPTPlan(
            tuple(pools),
            self.tokenizer or preset.tokenizer,
            self.max_length or preset.max_length,
            self.seed,
        )

    def default_output_dir(self) -> str:
        return f"runs/data/cpt-{self.preset}"


@dataclass(frozen=True)
class SFTPlan(_Plan):
    """Instruction-tuning rows with every choice made: what :func:`build_sft_dataset` takes."""

    sources: tuple[Source, ...]
    tokenizer_name: str
    schema: str
    max_length: int
    truncate_response: bool
    synthetic_per_task: int
    synthetic_tasks: tuple[str, ...]
    seed: int

    def settings(self) -> dict[str, Any]:
        """The keyword arguments :func:`sft_recipe` and :func:`build_sft_dataset` share."""
        rows = embedded_task_rows(self.synthetic_tasks, self.synthetic_per_task, seed=self.seed)
        return {
            "tokenizer_name": self.tokenizer_name,
            "schema": self.schema,
            "max_length": self.max_length,
            "truncate_response": self.truncate_response,
            "extra_conversations": synthetic_conversations(rows),
            "extra_name": "synthetic",
        }

    def recipe(self, tokenizer) -> dict[str, Any]:
        return sft_recipe(list(self.sources), tokenizer, **self.settings())

    def build(self, tokenizer, output_dir: str | Path, **options: Any) -> dict[str, Any]:
        """Build the rows into ``output_dir`` (``num_proc``, ``overwrite``); their manifest."""
        return build_sft_dataset(
            list(self.sources), tokenizer, output_dir, **self.settings(), **options
        )


@dataclass(frozen=True)
class SFTDataSpec:
    """What instruction-tuning rows are made from: ``preset`` and ``stage`` (the paper's two
    instruction sets; ``tiny``: the embedded set plus graded synthetic tasks) with any choice
    overridden. ``synthetic`` rows of each of ``synthetic_tasks`` are added, made from the
    embedded training corpus (the preset's count and tasks; every task when the preset names
    none and rows are asked for)."""

    preset: str = "tiny"
    stage: int = 1
    sources: tuple[str, ...] = ()
    schema: str = "auto"
    synthetic: int | None = None
    synthetic_tasks: tuple[str, ...] = ()
    tokenizer: str | None = None
    max_length: int | None = None
    truncate_response: bool = False
    seed: int = 0

    def resolve(self) -> SFTPlan:
        preset = sft_preset(self.preset, self.stage)
        per_task = preset.synthetic_per_task if self.synthetic is None else self.synthetic
        tasks = self.synthetic_tasks or preset.synthetic_tasks or (TASKS if per_task else ())
        check_tasks(tasks)  # before any tokenizer or model is loaded
        return SFTPlan(
            tuple(Source.parse(s) for s in self.sources) if self.sources else tuple(preset.sources),
            self.tokenizer or preset.tokenizer,
            self.schema,
            self.max_length or preset.max_length,
            self.truncate_response,
            per_task,
            tuple(tasks),
            self.seed,
        )

    def default_output_dir(self) -> str:
        stage = f"-stage{self.stage}" if self.preset == "paper" else ""
        return f"runs/data/sft-{self.preset}{stage}"


def prepare_data(
    spec: CPTDataSpec | SFTDataSpec,
    output_dir: str | Path | None = None,
    *,
    num_proc: int = 1,
    overwrite: bool = False,
    trust_remote_code: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Build the data ``spec`` describes (a CPT corpus or SFT rows) into ``output_dir`` (default
    ``runs/data/cpt-<preset>`` or ``runs/data/sft-<preset>[-stage<n>]``), with ``num_proc``
    tokenising processes; ``overwrite`` replaces a folder an earlier build made (never any other
    folder). Returns ``(manifest, output folder)``."""
    plan = spec.resolve()
    tokenizer = load_tokenizer(plan.tokenizer_name, trust_remote_code=trust_remote_code)
    folder = Path(output_dir or spec.default_output_dir())
    manifest = plan.build(tokenizer, folder, num_proc=num_proc, overwrite=overwrite)
    return manifest, folder
