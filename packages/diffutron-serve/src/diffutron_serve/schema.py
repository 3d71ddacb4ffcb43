"""The API's declared request and response models (pydantic): what ``/openapi.json`` lists, and
what every request body is validated against. A body that does not fit gets one 400 in the
OpenAI format, worded as before the models (:func:`refusal`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from diffutron_serve.errors import APIError, bad_request

Number = Annotated[StrictFloat, Field(allow_inf_nan=False)]
"""A finite JSON number (an integer is one too; a boolean or a string is not)."""


class TextPart(BaseModel):
    """A content part: only text."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: StrictStr = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant"]
    content: StrictStr | list[TextPart]


class Diffusion(BaseModel):
    """The diffusion settings a request may carry beside OpenAI's fields; unset, the model's
    ``sampler_config.json`` (and the server's ``--cache``) decide (docs/serving.md)."""

    steps: StrictInt | None = Field(None, description="Denoising steps of the whole answer.")
    block_length: StrictInt | None = Field(None, description="Tokens per block.")
    threshold: Number | None = Field(
        None, description="Commit every position at least this confident; null: the reference."
    )
    entropy_bound: Number | None = Field(
        None, description="EB-sampler: commit while summed entropy less its largest is below it."
    )
    margin_threshold: Number | None = Field(
        None, description="Commit every position whose top-two probability gap is at least it."
    )
    kl_threshold: Number | None = Field(
        None, description="KLASS: commit every position whose KL since the last step is below it."
    )
    dilation: StrictInt | None = Field(
        None, description="Positions committed in one step lie at least this far apart."
    )
    policy: StrictStr | None = Field(
        None, description="learned: the model's learned commit policy; null: none."
    )
    remasking: StrictStr | None = Field(None, description="low_confidence or random.")
    cfg_scale: Number | None = Field(None, description="Classifier-free guidance scale.")
    repetition_penalty: Number | None = None
    cache: StrictStr | None = Field(
        None, description="Block cache: prefix, dual, or none (as null)."
    )
    cache_interval: StrictInt | None = None
    cache_refresh: StrictStr | None = Field(
        None, description="fixed or adaptive (the default with a cache and no interval)."
    )
    cache_drift: Number | None = Field(
        None, description="The adaptive refresh's drift bound; 0 refreshes at every step."
    )
    cache_delayed: StrictBool | None = Field(
        None, description="Delayed caching: settled columns of the block come from the cache."
    )
    canvas: StrictBool | None = Field(
        None, description="Stream the denoising canvas with each chunk."
    )


class Common(Diffusion):
    """The fields chat and completions share. Fields an OpenAI client sends that do not change
    a diffusion answer (``top_p``, ``user``, penalties, ``stream_options`` …) are accepted."""

    model_config = ConfigDict(extra="allow")
    model: StrictStr
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    temperature: Number | None = None
    n: StrictInt | None = None
    seed: StrictInt | None = None
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    stream: StrictBool | None = None
    top_p: Number | None = None
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    user: StrictStr | None = None
    stream_options: dict[str, Any] | None = None


class ChatRequest(Common):
    """``POST /v1/chat/completions``."""

    messages: Annotated[list[Message], Field(min_length=1)]
    logprobs: StrictBool | None = Field(None, description="Not supported: refused when true.")
    top_logprobs: StrictInt | None = Field(None, description="Not supported: refused above 0.")
    tools: list[dict[str, Any]] | None = Field(None, description="Not supported with a choice.")
    tool_choice: StrictStr | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = Field(None, description='Only {"type": "text"}.')


class CompletionRequest(Common):
    """``POST /v1/completions``: a raw prompt, or with ``suffix`` the gap between the two."""

    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
    suffix: StrictStr | None = None
    echo: StrictBool | None = Field(None, description="Not supported: refused when true.")
    best_of: StrictInt | None = Field(None, description="Not supported: refused above 1.")
    logprobs: StrictInt | None = Field(None, description="Not supported: refused when set.")


Finish = Literal["stop", "length"]
"""Why an answer ended: its end (or a stop string), or ``max_tokens``."""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "diffutron"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """What every choice of a whole answer holds (there is one: ``n`` is 1)."""

    index: int = 0
    finish_reason: Finish
    logprobs: None = None


class ChatChoice(Choice):
    message: AssistantMessage


class TextChoice(Choice):
    text: str


class Reply(BaseModel):
    """What every whole answer holds."""

    id: str
    created: int
    model: str
    usage: Usage


class ChatCompletion(Reply):
    object: Literal["chat.completion"] = "chat.completion"
    choices: list[ChatChoice]


class Completion(Reply):
    object: Literal["text_completion"] = "text_completion"
    choices: list[TextChoice]


class Delta(BaseModel):
    """What a streamed chat chunk adds: the role in the first, then text."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    finish_reason: Finish | None = None
    logprobs: None = None


class ChatChunkChoice(ChunkChoice):
    delta: Delta


class TextChunkChoice(ChunkChoice):
    text: str = ""


class Canvas(BaseModel):
    """The denoising stream's view of the answer region (docs/serving.md#the-denoising-stream)."""

    step: int
    spans: list[dict[str, Any]] = Field(description='Runs of {"text": …} and {"masks": n}.')
    masks: int


class Chunk(BaseModel):
    """One Server-Sent Event of a streamed answer; ``usage`` in the last, ``canvas`` when asked
    for. Dumped with the fields it was given (``exclude_unset``), as OpenAI's chunks are."""

    id: str
    created: int
    model: str
    usage: Usage | None = None
    canvas: Canvas | None = None


class ChatCompletionChunk(Chunk):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChatChunkChoice]


class CompletionChunk(Chunk):
    object: Literal["text_completion"] = "text_completion"
    choices: list[TextChunkChoice]


KINDS = {
    "float_type": "a number",
    "finite_number": "a finite number",
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "list_type": "a list",
}
WHOLE = {
    "model": "'model' is required (a string; see GET /v1/models)",
    "stop": "'stop' must be a string or a list of at most 4 strings",
    "prompt": "'prompt' must be a string",
    "messages": "'messages' must be a non-empty list",
}


def _described(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def refusal(error: ValidationError) -> APIError:
    """The 400 of a body that does not fit its model: its first problem, named."""
    first = error.errors()[0]
    loc, kind = first["loc"], first["type"]
    name = str(loc[0]) if loc else "body"
    if name == "messages" and len(loc) >= 2 and isinstance(loc[1], int):
        i = loc[1]
        message = f"messages[{i}] needs a role of system, user or assistant"
        if len(loc) >= 3 and loc[2] == "content":
            message = f"messages[{i}].content must be a string"
            if isinstance(first.get("input"), list):
                message = f"messages[{i}]: only text content is supported"
        return bad_request(message, param="messages")
    if name in WHOLE:
        return bad_request(WHOLE[name], param=name)
    if kind == "finite_number":
        return bad_request(f"'{name}' must be a finite number", param=name)
    if kind in KINDS:
        given = _described(first.get("input"))
        return bad_request(f"'{name}' must be {KINDS[kind]}, not {given}", param=name)
    return bad_request(f"'{name}': {first['msg']}", param=name)
