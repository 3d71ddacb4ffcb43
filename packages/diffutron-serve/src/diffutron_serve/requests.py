"""Request bodies of the OpenAI API, checked field by field: the sampler settings they ask for,
the prompt as token ids, and what the answer is cut at."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diffutron_common import check_text
from diffutron_core import check_seed
from diffutron_sample import SampleError, SamplerConfig
from diffutron_sample import check_fits as fits
from diffutron_sample.text import infill_ids, prompt_ids
from diffutron_serve.errors import APIError, bad_request

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

EXTRA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "steps": int,
    "block_length": int,
    "threshold": (float, type(None)),
    "remasking": str,
    "cfg_scale": float,
    "repetition_penalty": float,
    "cache": (str, type(None)),
    "cache_interval": int,
}
"""Diffusion settings accepted as extra body fields (the model's ``sampler_config.json`` gives
the defaults)."""


@dataclass
class Job:
    """What the engine is asked to do for one request."""

    ids: list[int]
    config: SamplerConfig
    seed: int | None
    stop: list[str]
    max_tokens: int
    suffix_ids: list[int] | None = None
    canvas: bool = False
    stream: bool = False
    chat: bool = True
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    return data


def _typed(
    data: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None
) -> Any:
    """``data[name]`` checked to be of ``kinds``; absent or null (as OpenAI clients send for
    "not set") is ``default``."""
    value = data.get(name)
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if value is None:
        return default
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds:
        raise bad_request(f"'{name}' must be {_names(kinds)}, not a boolean", param=name)
    if not isinstance(value, kinds):
        raise bad_request(
            f"'{name}' must be {_names(kinds)}, not {type(value).__name__}", param=name
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_request(f"'{name}' must be a finite number", param=name)
    return value


def _names(kinds: tuple[type, ...]) -> str:
    words = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        type(None): "null",
        dict: "an object",
    }
    return " or ".join(words.get(k, k.__name__) for k in kinds)


def _stop(data: dict[str, Any]) -> list[str]:
    stop = data.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return [s for s in stop if s]
    raise bad_request("'stop' must be a string or a list of at most 4 strings", param="stop")


def sampler_config(data: dict[str, Any], defaults: SamplerConfig, max_tokens: int) -> SamplerConfig:
    """The model's settings with the request's: ``max_tokens`` new tokens in whole blocks, and
    as many steps per token as the model's own settings take (unless ``steps`` is given)."""
    try:  # text is read as every door reads it ("none" is no cache, as null is)
        changes = {
            n: SamplerConfig.parse(n, _typed(data, n, k))
            for n, k in EXTRA_FIELDS.items()
            if data.get(n) is not None
        }
    except SampleError as exc:
        raise bad_request(str(exc)) from None
    for name in ("threshold", "cache"):
        if name in data and data[name] is None:
            changes[name] = None  # explicitly the reference sampler, or no cache
    temperature = _typed(data, "temperature", float)
    if temperature is not None:
        changes["temperature"] = temperature
    block = changes.pop("block_length", defaults.block_length)
    if block < 1:
        raise bad_request("'block_length' must be at least 1", param="block_length")
    block = min(block, max_tokens)
    new = -(-max_tokens // block) * block
    if "steps" not in changes:
        per_token = defaults.steps / defaults.max_new_tokens
        blocks = max(1, new // block)
        changes["steps"] = max(blocks, round(new * per_token / blocks) * blocks)
    try:
        return defaults.replace(max_new_tokens=new, block_length=block, **changes)
    except (SampleError, TypeError, ValueError) as exc:
        raise bad_request(str(exc)) from None


def _max_tokens(data: dict[str, Any], default: int) -> int:
    value = None
    for name in ("max_completion_tokens", "max_tokens"):
        if data.get(name) is not None:
            value = _typed(data, name, int)
            if value < 1:
                raise bad_request(f"'{name}' must be at least 1", param=name)
            break
    return default if value is None else value


def _common(data: dict[str, Any], defaults: SamplerConfig, served: str) -> dict[str, Any]:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required (a string; see GET /v1/models)", param="model")
    if model != served:
        raise APIError(
            f"the model {model!r} does not exist; this server serves {served!r}",
            404,
            param="model",
            code="model_not_found",
        )
    if _typed(data, "n", int, 1) != 1:
        raise bad_request("only n=1 is supported", param="n")
    max_tokens = _max_tokens(data, defaults.max_new_tokens)
    seed = _typed(data, "seed", int)
    if seed is not None:
        try:
            check_seed(seed)
        except ValueError as exc:
            raise bad_request(str(exc), param="seed") from None
    return {
        "config": sampler_config(data, defaults, max_tokens),
        "seed": seed,
        "stop": _stop(data),
        "max_tokens": max_tokens,
        "stream": bool(_typed(data, "stream", bool, False)),
        "canvas": bool(_typed(data, "canvas", bool, False)),
        "model": model,
    }


def _messages(data: dict[str, Any]) -> list[dict[str, str]]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list", param="messages")
    cleaned = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
        ):
            raise bad_request(
                f"messages[{i}] needs a role of system, user or assistant", param="messages"
            )
        content = message.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                raise bad_request(f"messages[{i}]: only text content is supported", "messages")
            content = "".join(str(p.get("text", "")) for p in content)
        if not isinstance(content, str):
            raise bad_request(f"messages[{i}].content must be a string", param="messages")
        cleaned.append({"role": message["role"], "content": content})
    return cleaned


def chat_job(
    data: dict[str, Any], tokenizer: PreTrainedTokenizerBase, defaults: SamplerConfig, served: str
) -> Job:
    common = _common(data, defaults, served)
    try:
        ids = prompt_ids(tokenizer, _messages(data))
    except SampleError as exc:
        raise bad_request(str(exc), param="messages") from None
    return Job(ids=ids, chat=True, **common)


def completion_job(
    data: dict[str, Any], tokenizer: PreTrainedTokenizerBase, defaults: SamplerConfig, served: str
) -> Job:
    common = _common(data, defaults, served)
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be a string", param="prompt")
    suffix = _typed(data, "suffix", str)
    if suffix is not None:
        ids, suffix_ids = _infill_parts(tokenizer, prompt, suffix, common["config"])
        return Job(ids=ids, chat=False, suffix_ids=suffix_ids, **common)
    try:
        ids = prompt_ids(tokenizer, prompt, chat=False)
    except SampleError as exc:
        raise bad_request(str(exc), param="prompt") from None
    return Job(ids=ids, chat=False, suffix_ids=None, **common)


def _infill_parts(
    tokenizer: PreTrainedTokenizerBase, prompt: str, suffix: str, config: SamplerConfig
) -> tuple[list[int], list[int]]:
    """``(ids before the gap, ids after it)`` of ``prompt + mask * max_new_tokens + suffix``,
    built by the one infilling canvas rule (:func:`diffutron_sample.text.infill_ids`), so the
    server fills exactly what ``diffutron-sample infill`` fills for the same text."""
    masks = config.max_new_tokens
    try:
        check_text(prompt, "the prompt", error=SampleError)
        check_text(suffix, "the suffix", error=SampleError)
        canvas = infill_ids(tokenizer, prompt + tokenizer.mask_token * masks + suffix)
    except SampleError as exc:
        param = "prompt" if "prompt" in str(exc) else "suffix"
        raise bad_request(str(exc), param=param) from None
    mask = tokenizer.mask_token_id
    first = canvas.index(mask)
    if canvas.count(mask) != masks or canvas[first : first + masks] != [mask] * masks:
        raise bad_request(
            f"the prompt or the suffix holds the mask token {tokenizer.mask_token}; remove it",
            param="suffix",
        )
    return canvas[:first], canvas[first + masks :]


def check_fits(job: Job, limit: int | None) -> None:
    """A prompt that does not fit the model's positions with its answer is refused (400) by
    the engine's one context-fit rule."""
    need = len(job.ids) + job.config.max_new_tokens + len(job.suffix_ids or [])
    try:
        fits(need, limit)
    except SampleError as exc:
        raise bad_request(str(exc), param="max_tokens", code="context_length_exceeded") from None
