"""The commit policies: which of a step's proposals are committed
(docs/sampling.md#commit-policies).

The reference schedule commits each step's planned count, the most confident first. A parallel
rule instead commits, in the active block, every masked position it accepts plus the most
confident one (so every step commits something, and the first pick is always the reference's),
and the block is finished before the next one starts:

- ``threshold``: confidence at or above it (Fast-dLLM);
- ``entropy_bound``: the EB-sampler's bound: in order of confidence, while the summed entropy of
  the accepted positions, less the largest of them, stays below it;
- ``margin_threshold``: the gap between the two most probable tokens at or above it;
- ``kl_threshold``: KLASS's stability: the KL divergence of the position's distribution from its
  previous step's below it (a position seen for the first time is not stable);
- ``policy="learned"``: the commit policy trained for the model (``diffutron-train policy``)
  calls the position's proposal final.

``dilation`` spreads any of them: positions committed in one step lie at least that far apart
(the most confident first; a scheduled count is still met), as the dilated unmasking scheduler
does. Each rule at its limit is the reference sampler at one token per step: ``threshold`` 1.0,
``margin_threshold`` 1.0, ``entropy_bound`` 0, ``kl_threshold`` 0; ``dilation`` 1 is off.
This module checks the settings; :mod:`diffutron_sample.commits` applies them.
"""

from __future__ import annotations

from typing import Any

from diffutron_common import check_number
from diffutron_sample.errors import SampleError

PARALLEL_RULES = ("threshold", "entropy_bound", "margin_threshold", "kl_threshold")
"""The settings that turn on a parallel rule; at most one of them, or ``policy``, is set."""
POLICIES = ("learned",)
RULE_SETTINGS = (*PARALLEL_RULES, "policy")
"""Every setting that names a commit rule: one asked for at a door (a flag, a request field, an
lm-eval argument) replaces the model's default rule."""
MAX_BOUND = 1000.0
MAX_DILATION = 1_000_000


def rule_of(config: Any) -> str | None:
    """The parallel rule ``config`` uses (a name of :data:`PARALLEL_RULES`, or ``"learned"``);
    None for the reference schedule."""
    if config.policy is not None:
        return str(config.policy)
    return next((name for name in PARALLEL_RULES if getattr(config, name) is not None), None)


def check_policy(config: Any) -> None:
    """Raise :class:`SampleError` naming the fix for a rule's value out of range, an unknown
    policy, two rules at once, or a rule without the confidence ranking it needs."""
    if config.threshold is not None:
        check_number(
            "threshold", config.threshold, minimum=0, maximum=1, min_open=True, error=SampleError
        )
    if config.margin_threshold is not None:
        check_number(
            "margin_threshold",
            config.margin_threshold,
            minimum=0,
            maximum=1,
            min_open=True,
            error=SampleError,
        )
    for name in ("entropy_bound", "kl_threshold"):
        if getattr(config, name) is not None:
            check_number(
                name,
                getattr(config, name),
                minimum=0,
                maximum=MAX_BOUND,
                error=SampleError,
                hint="0 commits one token per step",
            )
    check_number(
        "dilation",
        config.dilation,
        minimum=1,
        maximum=MAX_DILATION,
        integer=True,
        error=SampleError,
        hint="1 is off",
    )
    if config.policy is not None and config.policy not in POLICIES:
        raise SampleError(
            f"unknown policy {config.policy!r}; use {' or '.join(POLICIES)} (or none: leave it "
            "unset for the reference schedule)"
        )
    chosen = [name for name in PARALLEL_RULES if getattr(config, name) is not None]
    chosen += [] if config.policy is None else ["policy"]
    if len(chosen) > 1:
        raise SampleError(
            f"{' and '.join(chosen)} are different commit rules; set only one of them"
        )
    if chosen and (config.remasking != "low_confidence" or config.stochastic_transfer):
        raise SampleError(
            f"{chosen[0]} decoding ranks positions by confidence: use "
            "remasking='low_confidence' without stochastic_transfer"
        )
