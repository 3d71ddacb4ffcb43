"""diffutron-train: LoRA continual pre-training and MDLM instruction tuning for Diffutron.

So far: the backbones (:func:`model_config` for the ``tiny`` and ``paper`` presets,
:func:`build_model`) and the paper's LoRA (:data:`PAPER_LORA`, :func:`apply_lora`,
:func:`count_parameters`), and the objectives (:func:`masked_lm_loss`: masked-LM at a fixed
rate, or MDLM), a resumable loop with atomic checkpoints (:func:`train_loop`) and the export to a
plain Hugging Face directory (:func:`export_model`). The ``cpt`` and ``sft`` commands come next.
"""

from importlib.metadata import version

from diffutron_train.loop import LoopSettings, TrainError, export_model, train_loop
from diffutron_train.lora import PAPER_LORA, ParameterCount, apply_lora, count_parameters
from diffutron_train.models import (
    MMBERT_BASE,
    MMBERT_BASE_CONFIG,
    TINY_CONFIG,
    build_model,
    model_config,
)
from diffutron_train.objectives import masked_lm_loss

__version__ = version("diffutron-train")

__all__ = [
    "MMBERT_BASE",
    "MMBERT_BASE_CONFIG",
    "PAPER_LORA",
    "TINY_CONFIG",
    "LoopSettings",
    "ParameterCount",
    "TrainError",
    "__version__",
    "apply_lora",
    "build_model",
    "count_parameters",
    "export_model",
    "masked_lm_loss",
    "model_config",
    "train_loop",
]
