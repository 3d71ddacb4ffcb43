"""Instruction sets in their Hub schemas -> conversations (lists of chat messages).

* ``alpaca``: ``instruction``, ``input``, ``output`` (``metunlp/LlamaTurk-Instruction-Set``); the
  user turn is the instruction, plus ``"\\n\\n" + input`` when the input is not empty (dLLM's rule).
* ``instructurca``: ``Input``, ``Output`` (``turkish-nlp-suite/InstrucTurca``).
* ``messages``: a ``messages`` list of ``{"role", "content"}`` dicts ending with the assistant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from diffutron_common.text import text_problem
from diffutron_data import embedded
from diffutron_data.errors import DataError, ReadReport
from diffutron_data.readers import iter_rows
from diffutron_data.sources import Source

SCHEMAS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "output"),
    "instructurca": ("Input", "Output"),
    "messages": ("messages",),
}
ROLES = ("system", "user", "assistant")


class RowError(ValueError):
    """One row cannot become a conversation; the message says why."""


def detect_schema(fields: Iterable[str]) -> str:
    """The schema whose required fields are all present."""
    fields = set(fields)
    for name, required in SCHEMAS.items():
        if set(required) <= fields:
            return name
    expected = "; ".join(f"{n}: {', '.join(r)}" for n, r in SCHEMAS.items())
    raise DataError(f"no known instruction schema in fields {sorted(fields)} (expected {expected})")


def _text(row: dict, field: str, *, required: bool = True) -> str:
    value = row.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RowError(f"{field!r} is {type(value).__name__}, not text")
    if text_problem(value):
        raise RowError(f"{field!r} is {text_problem(value)}")
    if required and not value.strip():
        raise RowError(f"{field!r} is empty" if field in row else f"no field {field!r}")
    return value.strip()


def row_to_messages(row: dict, schema: str) -> list[dict[str, str]]:
    """One row of ``schema`` as chat messages; raises :class:`RowError` for an unusable row."""
    if schema == "alpaca":
        user = _text(row, "instruction")
        extra = _text(row, "input", required=False)
        if extra:
            user = f"{user}\n\n{extra}"
        return [
            {"role": "user", "content": user},
            {"role": "assistant", "content": _text(row, "output")},
        ]
    if schema == "instructurca":
        return [
            {"role": "user", "content": _text(row, "Input")},
            {"role": "assistant", "content": _text(row, "Output")},
        ]
    if schema == "messages":
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RowError("'messages' is not a non-empty list")
        cleaned = []
        for turn in messages:
            if not isinstance(turn, dict) or turn.get("role") not in ROLES:
                raise RowError(f"a message is not a dict with a role in {ROLES}")
            cleaned.append({"role": turn["role"], "content": _text(turn, "content")})
        if cleaned[-1]["role"] != "assistant":
            raise RowError("the last message is not the assistant's")
        return cleaned
    raise DataError(f"unknown schema {schema!r}; known: {', '.join(SCHEMAS)}")


def iter_conversations(
    source: Source, report: ReadReport, *, schema: str = "auto"
) -> Iterator[tuple[list[dict[str, str]], str]]:
    """Stream ``(messages, origin)`` from an instruction source; bad rows are reported, skipped."""
    if schema != "auto" and schema not in SCHEMAS:
        raise DataError(f"unknown schema {schema!r}; known: auto, {', '.join(SCHEMAS)}")
    for row, origin in iter_rows(source, report):
        if schema == "auto":
            schema = detect_schema(row)
        try:
            messages = row_to_messages(row, schema)
        except RowError as exc:
            report.skip("malformed_row", origin, str(exc))
            continue
        report.yielded += 1
        yield messages, origin


def instruction_source() -> Source:
    """The embedded instruction set as a source."""
    return Source(str(embedded.instructions_path()))


def instruction_conversations() -> list[list[dict[str, str]]]:
    """The embedded instruction set as chat conversations."""
    report = ReadReport()
    return [messages for messages, _ in iter_conversations(instruction_source(), report)]
