"""diffutron-train: LoRA continual pre-training and MDLM instruction tuning for Diffutron.

The backbones (:func:`model_config` for the ``tiny`` and ``paper`` presets, :func:`build_model`),
the paper's LoRA (:data:`PAPER_LORA`, :func:`apply_lora`, :func:`count_parameters`), the objectives
(:func:`masked_lm_loss`: masked-LM at a fixed rate, or MDLM; :class:`MaskedLMObjective`), a
resumable, data-parallel loop with atomic checkpoints (:func:`train_loop`), the export to a plain
Hugging Face directory (:func:`export_model`) and the two recipes (:func:`run_cpt` and
:func:`run_sft`, in :mod:`diffutron_train.cpt` and :mod:`diffutron_train.sft`).
"""

from importlib.metadata import version

from diffutron_train.errors import TrainError
from diffutron_train.export import export_adapter, export_model, push_to_hub
from diffutron_train.loop import LoopSettings, train_loop
from diffutron_train.lora import PAPER_LORA, ParameterCount, apply_lora, count_parameters
from diffutron_train.models import (
    MMBERT_BASE,
    MMBERT_BASE_CONFIG,
    TINY_CONFIG,
    build_model,
    model_config,
)
from diffutron_train.objectives import MaskedLMObjective, masked_lm_loss
from diffutron_train.runs import plot_loss_curve, read_log, start_run

__version__ = version("diffutron-train")

__all__ = [
    "MMBERT_BASE",
    "MMBERT_BASE_CONFIG",
    "PAPER_LORA",
    "TINY_CONFIG",
    "LoopSettings",
    "MaskedLMObjective",
    "ParameterCount",
    "TrainError",
    "__version__",
    "apply_lora",
    "build_model",
    "count_parameters",
    "export_adapter",
    "export_model",
    "masked_lm_loss",
    "model_config",
    "plot_loss_curve",
    "push_to_hub",
    "read_log",
    "start_run",
    "train_loop",
]
