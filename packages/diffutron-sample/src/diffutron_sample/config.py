"""Sampler settings, with the field names users of dLLM / LLaDA know."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast

from diffutron_common import DiffutronError, check_number, read_text, write_text
from diffutron_core import PAPER_SAMPLER
from diffutron_sample.adapters import adapter_base, is_adapter_folder
from diffutron_sample.errors import SampleError
from diffutron_sample.policies import check_policy, rule_of
from diffutron_sample.refresh import check_cache
from diffutron_sample.settings import parse_setting, parse_settings

logger = logging.getLogger(__name__)

SAMPLER_CONFIG_NAME = "sampler_config.json"
"""File in a model directory holding its sampler defaults (written by diffutron-train)."""
REMASKING = ("low_confidence", "random")
MAX_SCALE = 1000
"""Bound of temperature, guidance and penalty (and of their inverses)."""
MAX_COUNT = 1_000_000
"""Bound of steps and lengths: far beyond any model's positions, short of a loop without end."""


@dataclass(frozen=True)
class SamplerConfig:
    """How to unmask: LLaDA's generator fields (docs/sampling.md#settings) plus ``threshold`` for
    fast decoding.

    Attributes:
        steps: denoising steps over all blocks, split evenly (a multiple of the number of blocks).
        max_new_tokens: masks appended after the prompt.
        block_length: blocks of the canvas filled left to right; must divide ``max_new_tokens``.
        temperature: Gumbel-max temperature; 0 is greedy.
        remasking: ``"low_confidence"`` commits the most probable positions first; ``"random"``
            commits random ones.
        stochastic_transfer: draw each step's commit count binomially instead of the schedule.
        cfg_scale: classifier-free guidance ``w``: ``un + (w + 1) (cond - un)``; 0 is off.
        repetition_penalty: HF-style penalty on every id already on the canvas; 1.0 is off.
        threshold: ``None`` for the reference schedule; a confidence in (0, 1] for parallel
            decoding that commits every masked position of the block at or above it (at least one
            per step), block after block for each row; ``steps`` is then not used
            (docs/sampling.md#threshold-decoding).
        early_stop: finish a row once it has committed an end token (eos or pad) with no mask
            before it, writing pad into its remaining masks: the pad tail costs no passes. Nothing
            before the end token changes, so trimmed outputs are the same; off in the reference.
        cache: ``None``, or the block cache of ModernBERT-style models: ``"prefix"`` recomputes
            the active block and everything after it at each step, ``"dual"`` the active block
            only; every other column's keys and values come from a full pass at the block's start
            (docs/sampling.md#block-cache). Other models generate without it.
        cache_interval: with ``cache``, also refresh the stored keys and values after this many
            cached steps inside a block; ``None`` refreshes at block starts only.
        cache_refresh, cache_drift: ``"fixed"`` (block starts, ``cache_interval``; the
            default) or ``"adaptive"`` (what ``--cache`` gives; ``cache_drift`` alone asks for
            it too): also refresh once the columns beside the block drift ``cache_drift`` from
            their states at the refresh (docs/sampling.md#adaptive-refresh).
        cache_delayed: with ``cache``, delayed caching (dKV-Cache): a column of the active block
            is computed once more in the pass after its commit, its keys and values stored,
            then read from the cache like the columns outside the block
            (docs/sampling.md#delayed-caching).
        entropy_bound, margin_threshold, kl_threshold: the other parallel rules (the EB-sampler's
            entropy bound, margin confidence, KLASS's stability), each instead of ``threshold``
            (docs/sampling.md#commit-policies).
        dilation: positions committed in one step lie at least this far apart; 1 is off.
        policy: ``"learned"``: commit what the model's learned commit policy calls final.
    """

    steps: int = 128
    max_new_tokens: int = 128
    block_length: int = 32
    temperature: float = 0.0
    remasking: Literal["low_confidence", "random"] = "low_confidence"
    stochastic_transfer: bool = False
    cfg_scale: float = 0.0
    repetition_penalty: float = 1.0
    threshold: float | None = None
    early_stop: bool = False
    cache: Literal["prefix", "dual"] | None = None
    cache_interval: int | None = None
    cache_refresh: Literal["fixed", "adaptive"] | None = None
    cache_drift: float | None = None
    cache_delayed: bool = False
    entropy_bound: float | None = None
    margin_threshold: float | None = None
    kl_threshold: float | None = None
    dilation: int = 1
    policy: Literal["learned"] | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_blocks(self) -> int:
        return self.max_new_tokens // self.block_length

    @cached_property  # read for every row at every step; a frozen config never changes it
    def rule(self) -> str | None:
        """The parallel commit rule in use (docs/sampling.md#commit-policies); None for the
        reference schedule, whose ``steps`` then apply."""
        return rule_of(self)

    def validate(self) -> None:
        """Raise :class:`SampleError` naming the fix for a wrong type, a value that is not finite
        or out of range, or an impossible combination."""
        self._check_numbers()
        self._check_choices()
        self._check_combination()

    def _check_numbers(self) -> None:
        """Counts, scales and the threshold: of the right type, finite and in range."""
        for name in ("steps", "max_new_tokens", "block_length"):
            check_number(
                name,
                getattr(self, name),
                minimum=1,
                maximum=MAX_COUNT,
                integer=True,
                error=SampleError,
            )
        # Beyond these bounds the logits leave float32 (1e39 guidance, a 1e-40 penalty): the
        # arithmetic, not the model, would decide the answer.
        check_number(
            "temperature",
            self.temperature,
            minimum=0,
            maximum=MAX_SCALE,
            error=SampleError,
            hint="0 is greedy",
        )
        if 0 < self.temperature < 1 / MAX_SCALE:
            raise SampleError(
                f"temperature must be 0 (greedy) or at least {1 / MAX_SCALE:g}, got "
                f"{self.temperature}"
            )
        check_number(
            "cfg_scale",
            self.cfg_scale,
            minimum=0,
            maximum=MAX_SCALE,
            error=SampleError,
            hint="0 is off",
        )
        check_number(
            "repetition_penalty",
            self.repetition_penalty,
            minimum=1 / MAX_SCALE,
            maximum=MAX_SCALE,
            error=SampleError,
            hint="1.0 is off",
        )

    def _check_choices(self) -> None:
        """The switches are booleans and ``remasking`` a known strategy."""
        for name in ("stochastic_transfer", "early_stop", "cache_delayed"):
            if not isinstance(getattr(self, name), bool):
                raise SampleError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.remasking not in REMASKING:
            raise SampleError(
                f"unknown remasking {self.remasking!r}; use one of {', '.join(REMASKING)}"
            )
        check_cache(self)

    def _check_combination(self) -> None:
        """Blocks divide the generation, steps divide over the blocks, and threshold decoding
        has a confidence ranking to use."""
        if self.max_new_tokens % self.block_length:
            raise SampleError(
                f"block_length {self.block_length} does not divide max_new_tokens "
                f"{self.max_new_tokens}; choose a block_length that divides it"
            )
        if self.steps < self.num_blocks:
            raise SampleError(
                f"steps {self.steps} is fewer than the {self.num_blocks} blocks; use at least "
                f"{self.num_blocks} steps or a larger block_length"
            )
        if self.steps % self.num_blocks:
            raise SampleError(
                f"steps {self.steps} do not split evenly over {self.num_blocks} blocks; use a "
                f"multiple of {self.num_blocks}"
            )
        check_policy(self)

    def replace(self, **changes: Any) -> SamplerConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, name: str, text: Any) -> Any:
        """Setting ``name`` written as text, typed: the one reading of every door's text
        (``none``, ``null``, ``off``, ``false`` and empty unset ``threshold``, ``cache`` and
        ``cache_interval``); :mod:`diffutron_sample.settings`."""
        return parse_setting(cls, name, text)

    def with_text(self, **texts: Any) -> SamplerConfig:
        """These settings with ``texts`` (``name="text"``) parsed and applied."""
        return self.replace(**parse_settings(type(self), texts))

    @classmethod
    def paper(
        cls,
        max_new_tokens: int = cast(int, PAPER_SAMPLER["max_new_tokens"]),  # an int (128)
        **changes: Any,
    ) -> SamplerConfig:
        """The paper's settings (:data:`diffutron_core.PAPER_SAMPLER`) for ``max_new_tokens``
        new tokens in as many steps, then ``changes``."""
        settings = {**PAPER_SAMPLER, "steps": max_new_tokens, "max_new_tokens": max_new_tokens}
        return cls(**{**settings, **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerConfig:
        if not isinstance(values, dict):
            raise SampleError(
                "sampler settings must be a mapping of names to values, not "
                f"{type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = {str(k) for k in values} - known
        if unknown:
            raise SampleError(
                f"unknown sampler setting(s): {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**values)

    def save_pretrained(self, directory: str | Path) -> None:
        write_text(
            Path(directory) / SAMPLER_CONFIG_NAME, json.dumps(self.to_dict(), indent=2) + "\n"
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **changes: Any) -> SamplerConfig:
        """The settings a model was trained and evaluated with, then ``changes``.

        They come from its ``sampler_config.json`` (in the folder, in an adapter's base model
        folder, or on the Hub when online). A model without one (the paper's released
        checkpoints, dLLM's models) gets the paper's settings (:meth:`paper`), and the log says
        so. A malformed file is one :class:`SampleError` naming it."""
        path = sampler_config_file(name_or_path)
        if path is None:
            logger.warning(
                "%s has no %s: using the paper's sampler settings (steps = max_new_tokens, block "
                "%s, temperature %s, repetition penalty %s)",
                name_or_path,
                SAMPLER_CONFIG_NAME,
                PAPER_SAMPLER["block_length"],
                PAPER_SAMPLER["temperature"],
                PAPER_SAMPLER["repetition_penalty"],
            )
            return cls.paper(**changes)
        try:
            values = json.loads(read_text(path, what="sampler config"))
        except DiffutronError as exc:
            raise SampleError(str(exc)) from None
        except ValueError as exc:
            raise SampleError(
                f"{path} is not valid JSON ({exc}); fix it or delete it to use the paper's settings"
            ) from None
        if not isinstance(values, dict):
            raise SampleError(
                f"{path} must hold a JSON object of sampler settings, not a {type(values).__name__}"
            )
        try:
            cls.from_dict(values)
        except SampleError as exc:
            raise SampleError(f"{path}: {exc}") from None
        return cls.from_dict({**values, **changes})


def sampler_config_file(name_or_path: str | Path) -> Path | None:
    """Where a model's ``sampler_config.json`` is: in its folder; for an adapter folder without
    one, in its base model's; for a Hub id, in the repository (from the local cache when
    offline); None when there is none."""
    folder = Path(name_or_path)
    if (folder / SAMPLER_CONFIG_NAME).is_file():
        return folder / SAMPLER_CONFIG_NAME
    if folder.is_dir():
        if is_adapter_folder(folder):
            base = adapter_base(folder)
            return sampler_config_file(base) if base != str(folder) else None
        return None
    if folder.exists() or str(name_or_path).count("/") != 1:
        return None
    try:  # a Hub id: the file if the repository has one
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(str(name_or_path), SAMPLER_CONFIG_NAME))
    except Exception:  # not there, offline and not cached, no network: the paper's settings
        return None
