"""Prompts files: JSON Lines rows with a ``prompt`` (text) or ``messages`` (a chat), for batches.

Contract: every non-blank line must be a JSON object holding either ``prompt``, a non-empty
string, or ``messages``, a non-empty list of ``{"role": "system"|"user"|"assistant", "content":
text}`` ending with the user's turn. A line that is not (bad JSON, not UTF-8, a wrong field) is
reported as ``FILE:LINE: reason`` and skipped; the row's other fields travel to the output. A file
with no usable row is an error: there would be nothing to generate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffutron_common import DiffutronError, check_text, iter_lines
from diffutron_sample.errors import SampleError

ROLES = ("system", "user", "assistant")


@dataclass
class PromptRow:
    line: int
    row: dict[str, Any]
    """The whole JSON object, so the output can carry its other fields (ids, references)."""
    prompt: str | list[dict[str, str]]


@dataclass
class PromptsFile:
    rows: list[PromptRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """``FILE:LINE: reason; skipped`` for every line that was not used."""


def prompt_of(row: Any) -> str | list[dict[str, str]]:
    """The prompt of one row, or :class:`SampleError` saying what is wrong with it."""
    if not isinstance(row, dict):
        raise SampleError(f"a JSON {type(row).__name__}, not an object")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise SampleError("'messages' is not a non-empty list")
        for turn in messages:
            if not isinstance(turn, dict) or turn.get("role") not in ROLES:
                raise SampleError(f"a message is not an object with a role in {', '.join(ROLES)}")
            if not isinstance(turn.get("content"), str):
                raise SampleError("a message has no text 'content'")
            check_text(turn["content"], "a message's content", error=SampleError)
        if messages[-1]["role"] != "user":
            raise SampleError("the last message is not the user's")
        return [{"role": t["role"], "content": t["content"]} for t in messages]
    if "prompt" not in row:
        raise SampleError("no 'prompt' or 'messages' field")
    prompt = row["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise SampleError("'prompt' is not a non-empty text")
    return check_text(prompt, "'prompt'", error=SampleError)


def read_prompts(path: str | Path) -> PromptsFile:
    """Read a prompts file by the contract of this module."""
    path = Path(path)
    found = PromptsFile()

    def skip(number: int, reason: str) -> None:
        found.problems.append(f"{path}:{number}: {reason}; skipped")

    try:
        lines = iter_lines(
            path,
            what="prompts file",
            on_error=lambda number, message: skip(
                number, message.removeprefix(f"{path}:{number}: ")
            ),
        )
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                skip(number, "not valid JSON")
                continue
            try:
                found.rows.append(PromptRow(number, row, prompt_of(row)))
            except SampleError as exc:
                skip(number, str(exc))
    except SampleError:
        raise
    except DiffutronError as exc:  # missing, a folder, unreadable
        raise SampleError(str(exc)) from None
    if not found.rows:
        detail = (
            f"{len(found.problems)} line(s) skipped, the first: "
            f"{found.problems[0].removeprefix(f'{path}:').removesuffix('; skipped')}"
            if found.problems
            else "it is empty"
        )
        raise SampleError(
            f"{path}: no prompt to generate for ({detail}); write one JSON object per line with "
            "'prompt' or 'messages'"
        )
    return found
