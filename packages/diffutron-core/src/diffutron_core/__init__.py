"""diffutron-core: the masked-diffusion math of Diffutron, on plain torch tensors.

Forward process (:func:`sample_t`, :func:`mask_tokens`) under a schedule (:class:`LinearSchedule`,
:class:`CosineSchedule`); the training objective (:func:`mdlm_loss`); the pieces of the reverse
process (:func:`transfer_counts`, :func:`gumbel_argmax`); the likelihood estimator used for
multiple-choice evaluation (:func:`mc_loglikelihood`); the one padding rule (:func:`pad_rows`); and
the seed formulas every package draws from (:mod:`diffutron_core.seeds`). Depends on torch only.
"""

from importlib.metadata import version

from diffutron_core.batching import pad_rows
from diffutron_core.likelihood import mc_loglikelihood, mc_mask_draws, stratified_mask_counts
from diffutron_core.loss import mdlm_loss
from diffutron_core.noise import mask_tokens, sample_t
from diffutron_core.sampling import (
    PAPER_SAMPLER,
    gumbel_argmax,
    peak_argmax,
    transfer_counts,
    transfer_plan,
)
from diffutron_core.schedules import CosineSchedule, LinearSchedule, Schedule
from diffutron_core.seeds import (
    MAX_SEED,
    check_seed,
    dropout_seed,
    generator,
    mask_seed,
    request_seed,
    shuffle_seed,
    window_seed,
)

__version__ = version("diffutron-core")

__all__ = [
    "MAX_SEED",
    "PAPER_SAMPLER",
    "CosineSchedule",
    "LinearSchedule",
    "Schedule",
    "__version__",
    "check_seed",
    "dropout_seed",
    "generator",
    "gumbel_argmax",
    "mask_seed",
    "mask_tokens",
    "mc_loglikelihood",
    "mc_mask_draws",
    "mdlm_loss",
    "pad_rows",
    "peak_argmax",
    "request_seed",
    "sample_t",
    "shuffle_seed",
    "stratified_mask_counts",
    "transfer_counts",
    "transfer_plan",
    "window_seed",
]
