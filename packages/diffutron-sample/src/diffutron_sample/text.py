"""From text to prompt ids and from canvas back to text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard, cast

import torch

from diffutron_common import check_text
from diffutron_common.chat import END_MARKER
from diffutron_core import pad_rows
from diffutron_sample.errors import SampleError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

END_MARKERS = (END_MARKER,)
"""Text that ends an answer in dLLM's BERT chat format; the reply is cut at the first one."""
Messages = list[dict[str, str]]
Prompt = str | Messages | Sequence[int]
"""A prompt: text (a user turn, or raw text with ``chat=False``), a message list, or token ids
already made (used as they are, e.g. lm-eval's context after its own special tokens)."""


def _is_ids(prompt: Prompt) -> TypeGuard[Sequence[int]]:
    return not isinstance(prompt, str) and all(isinstance(t, int) for t in prompt)


def _decode(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """One sequence of ids as text, special tokens skipped."""
    return cast(str, tokenizer.decode(ids, skip_special_tokens=True))  # one sequence: one str


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, prompt: Prompt, *, chat: bool = True
) -> list[int]:
    """Token ids of one prompt (a list of ids is returned as it is).

    ``chat=True``: a user message (or a message list) rendered with the tokenizer's chat template
    up to the generation prompt, tokenised without special tokens (as SFT rows are).
    ``chat=False``: the raw text after the tokenizer's ``<bos>`` (if it has one), for continuation.
    """
    if _is_ids(prompt):
        return list(prompt)
    given = cast("str | Messages", prompt)  # not ids: text or a message list
    for text in [given] if isinstance(given, str) else [m.get("content", "") for m in given]:
        check_text(text, "the prompt", error=SampleError)
    if chat:
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else given
        if not getattr(tokenizer, "chat_template", None):
            raise SampleError(
                "the tokenizer has no chat template: save one with the model (diffutron-train "
                "does) or use raw prompts (--raw)"
            )
        rendered = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        text = cast(str, rendered)  # tokenize=False: the text, not ids
        chat_ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        return chat_ids
    if not isinstance(given, str):
        raise SampleError("a raw prompt must be text, not a message list")
    ids: list[int] = tokenizer(given, add_special_tokens=False)["input_ids"]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids


def infill_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The one infilling canvas: ``text`` with the tokenizer's mask token (e.g. ``<mask>``) at
    each position to fill, tokenised as the tokenizer tokenises a text (its special tokens
    included). The CLI's ``infill``, :func:`~diffutron_sample.generation.infill_text` and the
    server's ``suffix`` (``prompt + mask * max_tokens + suffix``) all build it here."""
    check_text(text, "the text", error=SampleError)
    mask = tokenizer.mask_token
    if mask is None or mask not in text:
        raise SampleError(f"the text holds no {mask}: mark what to fill with it")
    return list(tokenizer(text)["input_ids"])


def batch_prompt_ids(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt], *, chat: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of several prompts, left-padded."""
    rows = [prompt_ids(tokenizer, p, chat=chat) for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return pad_rows(rows, pad, side="left")


def stop_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    return {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}


def marker_ids(
    tokenizer: PreTrainedTokenizerBase, markers: Sequence[str] = END_MARKERS
) -> set[int]:
    """Ids of the end markers that the tokenizer holds as tokens of their own (added or special
    tokens): decoding skips special tokens, so those are cut by id, the others by text."""
    added = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    return {added[m] for m in markers if m in added}


REPLACEMENT = "\ufffd"
"""What decoding gives for half a character: a growing answer never shows it."""


@dataclass(frozen=True)
class Answer:
    """An answer read off its tokens: its text, whether nothing after can change it, why it
    ended (``"stop"``, ``"length"``, or None while it grows) and how many tokens it is made of."""

    text: str
    complete: bool
    finish_reason: str | None
    tokens: int


class AnswerReader:
    """The one answer trimmer, incremental: reads an answer's tokens as they are committed (a
    mask ends what is final so far) and cuts it at the first eos / pad id, end marker, stop
    string or ``max_tokens``. :func:`trim` is its reading of a finished answer; the server
    streams through it."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        stop: Sequence[str] = (),
        max_tokens: int | None = None,
        end_markers: Sequence[str] = END_MARKERS,
    ) -> None:
        self.tokenizer, self.stop, self.max_tokens = tokenizer, list(stop), max_tokens
        self.end_markers = tuple(end_markers)
        self.stops = stop_ids(tokenizer) | marker_ids(tokenizer, self.end_markers)
        self.mask = getattr(tokenizer, "mask_token_id", None)

    def read(self, tokens: Sequence[int] | torch.Tensor, *, done: bool = True) -> Answer:
        """The answer as far as it is final; ``complete`` once nothing after can change it."""
        tokens = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        final = next((i for i, t in enumerate(tokens) if t == self.mask), len(tokens))
        prefix = tokens[:final]
        allowed = prefix if self.max_tokens is None else prefix[: self.max_tokens]
        cut = next((i for i, t in enumerate(allowed) if t in self.stops), len(allowed))
        ended = cut < len(allowed)
        kept = allowed[:cut]
        full = len(prefix) == len(tokens) or done
        limit = self.max_tokens is not None and len(kept) >= self.max_tokens
        complete = ended or full or limit
        # a growing answer shows all but its last token: decoding may still join it to the next
        shown = kept if complete else kept[:-1]
        text = decoded = _decode(self.tokenizer, shown)
        for marker in (*self.end_markers, *self.stop):
            if marker in text:
                text, ended = text.split(marker, 1)[0], True
        if not (complete or ended):
            return Answer(self._stable(text).lstrip(), False, None, len(shown))
        if not ended:  # cut by length: no piece of an end marker or stop string at its end
            text = self._without_piece(text)
        whole = text == decoded  # nothing cut from the text: every kept token is in it
        text = text.strip()
        count = len(kept) if whole else self._count(kept, text)
        return Answer(text, True, "stop" if ended else "length", count)

    def _count(self, tokens: list[int], text: str) -> int:
        """How many of ``tokens`` the answer ``text`` is made of (an end marker written as text,
        or what follows a stop string, does not count): the fewest whose decoding starts with
        it, found by bisection (a few decodes, not one per token) and checked, else by a scan."""

        def makes(size: int) -> bool:
            return _decode(self.tokenizer, tokens[:size]).strip().startswith(text)

        low, high = 0, len(tokens)
        while low < high:
            middle = (low + high) // 2
            if makes(middle):
                high = middle
            else:
                low = middle + 1
        if makes(low) and (low == 0 or not makes(low - 1)):
            return low
        return next((size for size in range(len(tokens) + 1) if makes(size)), len(tokens))

    def _without_piece(self, text: str) -> str:
        """``text`` without the longest start of an end marker or stop string at its end: it is
        undecided while the answer grows, and not the answer's when a length cut ends it."""
        longest = 0
        for marker in (*self.end_markers, *self.stop):
            for size in range(len(marker) - 1, longest, -1):
                if text.endswith(marker[:size]):
                    longest = size
                    break
        return text[: len(text) - longest]

    def _stable(self, text: str) -> str:
        """What of a growing text cannot change any more: no half character at its end, no start
        of an end marker or stop string, no trailing space (it is stripped at the end)."""
        return self._without_piece(text.rstrip(REPLACEMENT)).rstrip()


def trim(
    tokenizer: PreTrainedTokenizerBase,
    tokens: Sequence[int] | torch.Tensor,
    *,
    end_markers: Sequence[str] = END_MARKERS,
) -> str:
    """Text of generated ``tokens`` up to the first eos / pad token or end marker; special tokens
    skipped, surrounding white space removed (:class:`AnswerReader`'s reading of a finished
    answer)."""
    return AnswerReader(tokenizer, end_markers=end_markers).read(tokens, done=True).text


def decode_new(
    tokenizer: PreTrainedTokenizerBase,
    canvas: torch.Tensor,
    max_new_tokens: int,
    **kwargs: Sequence[str],
) -> list[str]:
    """Trimmed text of the last ``max_new_tokens`` positions of every canvas row."""
    return [trim(tokenizer, row[-max_new_tokens:], **kwargs) for row in canvas]


def render_canvas(
    tokenizer: PreTrainedTokenizerBase,
    tokens: Sequence[int] | torch.Tensor,
    *,
    mask_symbol: str = "░",
) -> str:
    """The canvas as text with each still-masked position drawn as ``mask_symbol`` (live view)."""
    tokens = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
    mask = tokenizer.mask_token_id
    pieces: list[str] = []
    run: list[int] = []
    for token in [*tokens, None]:
        if token is None or token == mask:
            if run:
                pieces.append(_decode(tokenizer, run))
                run = []
            if token == mask:
                pieces.append(mask_symbol)
        else:
            run.append(token)
    return "".join(pieces)
