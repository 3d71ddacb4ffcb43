"""diffutron-sample: generation with masked diffusion language models.

* :func:`generate_texts` - the one text-generation call: prompts in (text, messages or ids),
  trimmed replies out, one batch, with an optional live-view callback.
* :class:`Engine` - the step-level sampler: many independent requests (own settings, schedule
  and generator) advanced by one denoising step per call, added and removed between steps.
* :func:`generate` - LLaDA / dLLM iterative unmasking after a prompt (``SamplerConfig`` with
  ``threshold=None`` is the reference sampler; a threshold gives confidence-threshold parallel
  decoding; the entropy bound, margin, KLASS, dilation and a learned policy are the other commit
  rules); the output layer runs only where logits are needed.
* :class:`CommitPolicy` - the learned commit policy ``diffutron-train policy`` writes.
* :func:`infill` - fill mask tokens placed anywhere.
* :class:`ChatSession`, :func:`prompt_ids`, :func:`trim`, :func:`render_canvas` - chat and text.
* :func:`load_model` - a model directory or Hub id (safetensors only).

Depends on diffutron-common, diffutron-core, torch and transformers only.
"""

from importlib.metadata import version

from diffutron_sample.chat import ChatSession
from diffutron_sample.config import SAMPLER_CONFIG_NAME, SamplerConfig
from diffutron_sample.engine import Engine, Request, StepEvent, check_fits
from diffutron_sample.errors import SampleError
from diffutron_sample.generation import generate_texts, infill_text
from diffutron_sample.learned import CommitPolicy, find_commit_policy, tokenizer_fingerprint
from diffutron_sample.masked_lm import Execution, MaskedLM
from diffutron_sample.model import available_devices, freeze_heap, load_model, resolve_device
from diffutron_sample.penalty import apply_repetition_penalty
from diffutron_sample.prompts import PromptRow, PromptsFile, read_prompts
from diffutron_sample.sampler import generate, infill, left_pad
from diffutron_sample.text import (
    END_MARKERS,
    Prompt,
    batch_prompt_ids,
    decode_new,
    prompt_ids,
    render_canvas,
    trim,
)

__version__ = version("diffutron-sample")

__all__ = [
    "END_MARKERS",
    "SAMPLER_CONFIG_NAME",
    "ChatSession",
    "CommitPolicy",
    "Engine",
    "Execution",
    "MaskedLM",
    "Prompt",
    "PromptRow",
    "PromptsFile",
    "Request",
    "SampleError",
    "SamplerConfig",
    "StepEvent",
    "__version__",
    "apply_repetition_penalty",
    "available_devices",
    "batch_prompt_ids",
    "check_fits",
    "decode_new",
    "find_commit_policy",
    "freeze_heap",
    "generate",
    "generate_texts",
    "infill",
    "infill_text",
    "left_pad",
    "load_model",
    "prompt_ids",
    "read_prompts",
    "render_canvas",
    "resolve_device",
    "tokenizer_fingerprint",
    "trim",
]
