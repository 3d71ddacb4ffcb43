"""From a request body of the OpenAI API to the engine's job: the body checked against its
declared model (:mod:`diffutron_serve.schema`), capabilities that cannot be delivered refused,
the sampler settings it asks for, the prompt as token ids, and what the answer is cut at."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from diffutron_common import check_text
from diffutron_core import check_seed
from diffutron_sample import SampleError, SamplerConfig
from diffutron_sample import check_fits as fits
from diffutron_sample.config import MAX_COUNT
from diffutron_sample.policies import RULE_SETTINGS
from diffutron_sample.refresh import adaptive_by_default
from diffutron_sample.text import infill_ids, prompt_ids
from diffutron_serve.errors import APIError, bad_request, model_not_found
from diffutron_serve.schema import ChatRequest, Common, CompletionRequest, Diffusion, refusal

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Request = TypeVar("Request", ChatRequest, CompletionRequest)
"""A body's declared model."""


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


EXTRA_FIELDS = tuple(Diffusion.model_fields)
"""Diffusion settings accepted as extra body fields (the model's ``sampler_config.json`` gives
the defaults); ``canvas`` asks for the denoising stream."""
SETTINGS = tuple(n for n in EXTRA_FIELDS if n != "canvas")


def _validated(model: type[Request], data: dict[str, Any]) -> Request:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc) from None


def sampler_config(request: Common, defaults: SamplerConfig, max_tokens: int) -> SamplerConfig:
    """The model's settings with the request's: ``max_tokens`` new tokens in whole blocks, and
    as many steps per token as the model's own settings take (unless ``steps`` is given). The
    one conversion from a request to :class:`~diffutron_sample.SamplerConfig`."""
    given = request.model_dump(include=set(SETTINGS), exclude_none=True)
    try:  # text is read as every door reads it ("none" is no cache, as null is)
        changes = {n: SamplerConfig.parse(n, v) for n, v in given.items()}
    except SampleError as exc:
        raise bad_request(str(exc), param=_named(str(exc))) from None
    for name in (*RULE_SETTINGS, "cache"):
        if name in request.model_fields_set and getattr(request, name) is None:
            changes[name] = None  # explicitly the reference sampler, or no cache
    if any(name in changes for name in RULE_SETTINGS):  # a request's rule (or null: the reference)
        changes = {**dict.fromkeys(RULE_SETTINGS), **changes}  # replaces the model's default one
    if request.temperature is not None:
        changes["temperature"] = request.temperature
    if adaptive_by_default(changes, defaults):
        changes["cache_refresh"] = "adaptive"  # a cache alone refreshes as --cache does
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
        raise bad_request(str(exc), param=_named(str(exc))) from None


def _named(message: str) -> str | None:
    """The request field a sampler's refusal is about: the first one its message names."""
    names = (*SETTINGS, "temperature", "max_new_tokens")
    found = [(m.start(), n) for n in names if (m := re.search(rf"\b{n}\b", message))]
    if not found:
        return None
    name = min(found)[1]
    return "max_tokens" if name == "max_new_tokens" else name


def _max_tokens(request: Common, default: int, limit: int | None) -> int:
    value = None
    for name in ("max_completion_tokens", "max_tokens"):
        value = getattr(request, name)
        if value is not None:
            if value < 1:
                raise bad_request(f"'{name}' must be at least 1", param=name)
            most = MAX_COUNT if limit is None else min(limit, MAX_COUNT)
            if value > most:
                raise bad_request(
                    f"'{name}' is {value} but the model has {most} positions for the prompt "
                    f"and the answer together; lower '{name}'",
                    param=name,
                    code="context_length_exceeded",
                )
            break
    return default if value is None else value


def _common(
    request: Common, defaults: SamplerConfig, served: str, limit: int | None
) -> dict[str, Any]:
    if request.model != served:
        raise model_not_found(request.model, served)
    if request.n not in (None, 1):
        raise bad_request("only n=1 is supported", param="n")
    max_tokens = _max_tokens(request, defaults.max_new_tokens, limit)
    if request.seed is not None:
        try:
            check_seed(request.seed)
        except ValueError as exc:
            raise bad_request(str(exc), param="seed") from None
    stop = request.stop if isinstance(request.stop, list) else [request.stop or ""]
    return {
        "config": sampler_config(request, defaults, max_tokens),
        "seed": request.seed,
        "stop": [s for s in stop if s],
        "max_tokens": max_tokens,
        "stream": bool(request.stream),
        "canvas": bool(request.canvas),
        "model": request.model,
    }


def _unsupported(name: str, what: str) -> APIError:
    return bad_request(
        f"'{name}' asks for {what}, which a masked diffusion model here does not give; "
        f"leave '{name}' out",
        param=name,
    )


def _refuse_chat_extras(request: ChatRequest) -> None:
    """Capabilities a chat request may ask for that are not delivered: refused, never ignored."""
    if request.logprobs:
        raise _unsupported("logprobs", "token log-probabilities")
    if request.top_logprobs:
        raise _unsupported("top_logprobs", "token log-probabilities")
    if request.tools and request.tool_choice != "none":
        raise _unsupported("tools", "tool calls")
    kind = (request.response_format or {}).get("type", "text")
    if kind != "text":
        raise _unsupported("response_format", f"{kind} output")


def _refuse_completion_extras(request: CompletionRequest) -> None:
    if request.echo:
        raise _unsupported("echo", "the prompt echoed in the answer")
    if request.best_of not in (None, 1):
        raise _unsupported("best_of", "several answers to choose from")
    if request.logprobs is not None:
        raise _unsupported("logprobs", "token log-probabilities")


def chat_job(
    data: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    defaults: SamplerConfig,
    served: str,
    limit: int | None = None,
) -> Job:
    """The job of a chat body (checked against :class:`~diffutron_serve.schema.ChatRequest`)."""
    request = _validated(ChatRequest, data)
    _refuse_chat_extras(request)
    common = _common(request, defaults, served, limit)
    messages = [
        {
            "role": m.role,
            "content": m.content
            if isinstance(m.content, str)
            else "".join(p.text for p in m.content),
        }
        for m in request.messages
    ]
    try:
        ids = prompt_ids(tokenizer, messages)
    except SampleError as exc:
        raise bad_request(str(exc), param="messages") from None
    return Job(ids=ids, chat=True, **common)


def completion_job(
    data: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    defaults: SamplerConfig,
    served: str,
    limit: int | None = None,
) -> Job:
    """The job of a completions body (:class:`~diffutron_serve.schema.CompletionRequest`)."""
    request = _validated(CompletionRequest, data)
    _refuse_completion_extras(request)
    common = _common(request, defaults, served, limit)
    prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[0]
    if request.suffix is not None:
        ids, suffix_ids = _infill_parts(tokenizer, prompt, request.suffix, common["config"])
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
