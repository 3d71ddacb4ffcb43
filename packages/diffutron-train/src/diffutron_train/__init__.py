"""diffutron-train: LoRA continual pre-training and MDLM instruction tuning for Diffutron.

The training stage's entry points: :func:`run_cpt` takes a frozen :class:`CPTRun` (made by
:func:`cpt_run` from the ``tiny`` or ``paper`` preset, any field overridden) and :func:`run_sft` a
frozen :class:`SFTRun` (:func:`sft_run`, for stage 1 or 2); each resumes or refuses an existing
run folder, builds its data through ``diffutron_data.prepare_data``'s specs when given no
prepared folder, trains and exports a plain Hugging Face model directory.

Below them: the backbones (:func:`model_config` for the ``tiny`` and ``paper`` presets,
:func:`build_model`), the paper's LoRA (:data:`PAPER_LORA`, :func:`apply_lora`,
:func:`count_parameters`), the objectives (:func:`masked_lm_loss`: masked-LM at a fixed rate, or
MDLM; :class:`MaskedLMObjective`), a resumable, data-parallel loop with atomic checkpoints
(:func:`train_loop`) and the export to a plain Hugging Face directory (:func:`export_model`).
"""

from importlib.metadata import version

from diffutron_train.cpt import CPTRun, cpt_run, describe_cpt_run, run_cpt
from diffutron_train.errors import TrainError
from diffutron_train.export import export_adapter, export_model, push_to_hub
from diffutron_train.logs import plot_loss_curve, read_log
from diffutron_train.loop import train_loop
from diffutron_train.lora import PAPER_LORA, ParameterCount, apply_lora, count_parameters
from diffutron_train.models import (
    MMBERT_BASE,
    MMBERT_BASE_CONFIG,
    TINY_CONFIG,
    build_model,
    model_config,
)
from diffutron_train.objectives import MaskedLMObjective, masked_lm_loss
from diffutron_train.runs import start_run
from diffutron_train.settings import LoopSettings
from diffutron_train.sft import SFTRun, run_sft, sft_run

__version__ = version("diffutron-train")

__all__ = [
    "MMBERT_BASE",
    "MMBERT_BASE_CONFIG",
    "PAPER_LORA",
    "TINY_CONFIG",
    "CPTRun",
    "LoopSettings",
    "MaskedLMObjective",
    "ParameterCount",
    "SFTRun",
    "TrainError",
    "__version__",
    "apply_lora",
    "build_model",
    "count_parameters",
    "cpt_run",
    "describe_cpt_run",
    "export_adapter",
    "export_model",
    "masked_lm_loss",
    "model_config",
    "plot_loss_curve",
    "push_to_hub",
    "read_log",
    "run_cpt",
    "run_sft",
    "sft_run",
    "start_run",
    "train_loop",
]
