"""From a request's canvas to the text it answers: the final part only (every position before it
committed), cut at the end of the answer, a stop string or ``max_tokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffutron_sample.text import Answer, AnswerReader, render_canvas

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from diffutron_serve.requests import Job


class Reader:
    """Reads answers off canvases for one request: its answer region, read by the one
    incremental trimmer (:class:`diffutron_sample.text.AnswerReader`)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, job: Job, start: int) -> None:
        self.tokenizer, self.job, self.start = tokenizer, job, start
        self.answers = AnswerReader(tokenizer, stop=job.stop, max_tokens=job.max_tokens)
        self.mask = tokenizer.mask_token_id
        self.final: Answer | None = None
        """The answer read off the final canvas, once it has been."""

    def region(self, canvas: list[int]) -> list[int]:
        return canvas[self.start : self.start + self.job.config.max_new_tokens]

    def read(self, canvas: list[int], *, done: bool) -> Answer:
        """The answer as far as it is final; ``complete`` once nothing after can change it."""
        answer = self.answers.read(self.region(canvas), done=done)
        if done:
            self.final = answer
        return answer

    def canvas_text(self, canvas: list[int]) -> tuple[str, int]:
        """The answer region drawn with ``░`` for each masked position, and how many are left."""
        region = self.region(canvas)
        return render_canvas(self.tokenizer, region), sum(t == self.mask for t in region)
