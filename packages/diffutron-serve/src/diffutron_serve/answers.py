"""From a request's canvas to the text it answers: the final part only (every position before it
committed), cut at the end of the answer, a stop string or ``max_tokens``."""

from __future__ import annotations

from dataclasses import dataclass

from diffutron_sample.text import END_MARKERS, marker_ids, render_canvas, stop_ids

REPLACEMENT = "\ufffd"


@dataclass
class Answer:
    text: str
    complete: bool
    finish_reason: str | None
    tokens: int


class Reader:
    """Reads answers off canvases for one request."""

    def __init__(self, tokenizer, job, start: int):
        self.tokenizer, self.job, self.start = tokenizer, job, start
        self.stops = stop_ids(tokenizer) | marker_ids(tokenizer)
        self.mask = tokenizer.mask_token_id

    def region(self, canvas: list[int]) -> list[int]:
        return canvas[self.start : self.start + self.job.config.max_new_tokens]

    def read(self, canvas: list[int], *, done: bool) -> Answer:
        """The answer as far as it is final; ``complete`` once nothing after can change it."""
        region = self.region(canvas)
        prefix = []
        for token in region:
            if token == self.mask:
                break
            prefix.append(token)
        allowed = prefix[: self.job.max_tokens]  # the region is whole blocks: it may be longer
        cut = next((i for i, t in enumerate(allowed) if t in self.stops), len(allowed))
        ended = cut < len(allowed)
        tokens = allowed[:cut]
        full = len(prefix) == len(region) or done
        complete = ended or full or len(tokens) >= self.job.max_tokens
        # a growing answer shows all but its last token: decoding may still join it to the next
        shown = tokens if complete else tokens[:-1]
        text = self.tokenizer.decode(shown, skip_special_tokens=True)
        for marker in END_MARKERS:
            if marker in text:
                text, ended = text.split(marker, 1)[0], True
        for stop in self.job.stop:
            if stop in text:
                text, ended = text.split(stop, 1)[0], True
        complete = complete or ended
        if not complete:
            return Answer(self._stable(text).lstrip(), False, None, len(shown))
        text = text.strip()
        return Answer(text, True, "stop" if ended else "length", self._count(tokens, text))

    def _count(self, tokens: list[int], text: str) -> int:
        """How many of ``tokens`` the answer ``text`` is made of (an end marker written as text,
        or what follows a stop string, does not count)."""
        for size in range(len(tokens) + 1):
            if (
                self.tokenizer.decode(tokens[:size], skip_special_tokens=True)
                .strip()
                .startswith(text)
            ):
                return size
        return len(tokens)

    def _stable(self, text: str) -> str:
        """What of a growing text cannot change any more: no half character at its end, no start
        of a stop string, no trailing space (it is stripped at the end)."""
        text = text.rstrip(REPLACEMENT)
        for stop in self.job.stop:
            for size in range(len(stop) - 1, 0, -1):
                if text.endswith(stop[:size]):
                    text = text[:-size]
                    break
        return text.rstrip()

    def canvas_text(self, canvas: list[int]) -> tuple[str, int]:
        """The answer region drawn with ``░`` for each masked position, and how many are left."""
        region = self.region(canvas)
        return render_canvas(self.tokenizer, region), sum(t == self.mask for t in region)
