"""From a request's canvas to what its client is sent, in the engine thread: the answer as far
as it is final (the one incremental trimmer, :class:`diffutron_sample.text.AnswerReader`), the
text added since the last step, and the canvas for viewers as runs of text and of masks (data,
never a glyph: a ``░`` in an answer stays a character)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from diffutron_sample.text import Answer, AnswerReader

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from diffutron_serve.requests import Job

Spans = list[dict[str, Any]]
"""A canvas as ``{"text": …}`` and ``{"masks": n}`` runs, in order."""


@dataclass(frozen=True)
class Progress:
    """What one step (or the end) of a request sends: the answer so far, the text it adds to
    what was sent before, and (when asked for) the canvas."""

    answer: Answer
    delta: str
    canvas: dict[str, Any] | None = None


class Reader:
    """Reads one request's answers off its canvases, step after step."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, job: Job, start: int) -> None:
        self.tokenizer, self.job, self.start = tokenizer, job, start
        self.answers = AnswerReader(tokenizer, stop=job.stop, max_tokens=job.max_tokens)
        self.mask = tokenizer.mask_token_id
        self.sent = ""

    def region(self, canvas: list[int]) -> list[int]:
        return canvas[self.start : self.start + self.job.config.max_new_tokens]

    def read(self, canvas: list[int], *, done: bool) -> Answer:
        """The answer as far as it is final; ``complete`` once nothing after can change it."""
        return self.answers.read(self.region(canvas), done=done)

    def advance(self, canvas: list[int], *, done: bool, step: int = 0) -> Progress:
        """The answer off ``canvas`` and the text it adds to what was sent: a growing answer
        only ever grows (what is undecided is held back), so the deltas add up to the final
        answer."""
        answer = self.read(canvas, done=done)
        grown = answer.text.startswith(self.sent)
        delta = answer.text[len(self.sent) :] if grown else ""
        self.sent += delta
        view = None
        if self.job.canvas:
            spans = self.spans(canvas)
            masks = sum(span.get("masks", 0) for span in spans)
            view = {"step": step, "spans": spans, "masks": masks}
        return Progress(answer, delta, view)

    def spans(self, canvas: list[int]) -> Spans:
        """The answer region as runs of decoded text and of still-masked positions."""
        spans: Spans = []
        run: list[int] = []
        for token in [*self.region(canvas), None]:
            if (token is None or token == self.mask) and run:
                text = cast(str, self.tokenizer.decode(run, skip_special_tokens=True))
                spans.append({"text": text})
                run = []
            if token == self.mask:
                if spans and "masks" in spans[-1]:
                    spans[-1]["masks"] += 1
                else:
                    spans.append({"masks": 1})
            elif token is not None:
                run.append(token)
        return spans
