"""Replies in the OpenAI format: a whole completion, or its Server-Sent Events chunk by chunk."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from pydantic import BaseModel

from diffutron_sample.text import Answer
from diffutron_serve.answers import Progress
from diffutron_serve.errors import APIError
from diffutron_serve.requests import Job
from diffutron_serve.schema import (
    AssistantMessage,
    Canvas,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    Chunk,
    Completion,
    CompletionChunk,
    Delta,
    Finish,
    TextChoice,
    TextChunkChoice,
    Usage,
)
from diffutron_serve.tickets import Ticket, Update

Body = dict[str, Any]  # a JSON object: a request's body, a reply or a part of one


def failure(update: Update) -> APIError | None:
    """The error an update ends its request with, if it is one."""
    kind, payload = update
    if kind == "error":
        return APIError(f"generation failed: {payload}", 500, type="server_error")
    if kind == "shutdown":
        return APIError(str(payload), 503, type="server_error", code="shutting_down")
    return None


def usage(job: Job, answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": len(job.ids),
        "completion_tokens": answer.tokens,
        "total_tokens": len(job.ids) + answer.tokens,
    }


def reply(answer: Answer, reply_id: str, kind: str, job: Job, name: str) -> Body:
    """The whole completion (``kind`` ``"chat"`` or ``"text"``), as its declared model."""
    spent = Usage(**usage(job, answer))
    created = int(time.time())
    reason = cast(Finish, answer.finish_reason)  # a done answer has one; the model checks it
    if kind == "chat":
        message = AssistantMessage(content=answer.text)
        choice = ChatChoice(message=message, finish_reason=reason)
        whole: BaseModel = ChatCompletion(
            id=reply_id, created=created, model=name, choices=[choice], usage=spent
        )
    else:
        text = TextChoice(text=answer.text, finish_reason=reason)
        whole = Completion(id=reply_id, created=created, model=name, choices=[text], usage=spent)
    return whole.model_dump()


def chunk(
    reply_id: str, kind: str, name: str, progress: Progress, first: bool, done: bool, job: Job
) -> Body:
    """One streamed chunk: the text added since the last one (and the canvas, and at the end
    the finish reason and usage), as its declared model."""
    reason = cast(Finish | None, progress.answer.finish_reason if done else None)
    head: dict[str, Any] = {"id": reply_id, "created": int(time.time()), "model": name}
    if progress.canvas is not None:
        head["canvas"] = Canvas(**progress.canvas)
    if done:
        head["usage"] = Usage(**usage(job, progress.answer))
    part: Chunk
    if kind == "chat":
        said: dict[str, Any] = {"role": "assistant"} if first else {}
        if progress.delta:
            said["content"] = progress.delta
        delta = Delta(**said)
        choice = ChatChunkChoice(index=0, delta=delta, finish_reason=reason, logprobs=None)
        part = ChatCompletionChunk(object="chat.completion.chunk", choices=[choice], **head)
    else:
        text = TextChunkChoice(index=0, text=progress.delta, finish_reason=reason, logprobs=None)
        part = CompletionChunk(object="text_completion", choices=[text], **head)
    return part.model_dump(exclude_unset=True)


async def events(ticket: Ticket, reply_id: str, kind: str, name: str) -> AsyncIterator[str]:
    """The Server-Sent Events of one streamed request, ``data: [DONE]`` last: what the engine
    thread made of each step, sent as it is."""
    first, job = True, ticket.job
    while True:
        update = await ticket.updates.get()
        error = failure(update)
        if error is not None:
            yield f"data: {json.dumps(error.body())}\n\n"
            break
        step, payload = update
        progress = cast(Progress, payload)
        done = step == "done"
        part = chunk(reply_id, kind, name, progress, first, done, job)
        yield f"data: {json.dumps(part, ensure_ascii=False)}\n\n"
        first = False
        if done:
            break
    yield "data: [DONE]\n\n"
