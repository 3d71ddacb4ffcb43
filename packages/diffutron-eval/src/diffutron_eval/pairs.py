"""Sentence log-likelihoods for grammatical minimal pairs, three ways (docs/evaluation.md#grammar).

* ``pll``: the pseudo-log-likelihood (Salazar et al., 2020): each token is masked in turn and its
  log-probability given every other token is summed.
* ``pll-word-l2r``: TurBLiMP's protocol (Kauf & Ivanova, 2023; ``minicons``'
  ``PLL_metric="within_word_l2r"``): as ``pll``, but the tokens of the same word to the right of
  the masked one are masked too, so a word split into pieces does not give itself away. Words are
  the tokenizer's words (its pre-tokenizer's pieces: ``word_ids()``), as in ``minicons``.
* ``elbo``: the masked-diffusion bound the model was trained on
  (:func:`diffutron_eval.likelihood.score_continuations`, ``mc_num`` seeded draws).

Each scored text sits inside the tokenizer's special tokens, after a context that is never masked
(empty for a minimal pair). The masked copies of many texts share each forward pass, right-padded,
with the output layer run at the one scored position of each copy only: ``batch_size`` copies a
pass, never one text a pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffutron_core import pad_rows
from diffutron_eval.errors import EvalError
from diffutron_eval.likelihood import Scored, score_continuations
from diffutron_eval.perplexity import special_affixes
from diffutron_sample import MaskedLM

METHODS = ("pll", "pll-word-l2r", "elbo")


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else one :class:`EvalError`."""
    if method not in METHODS:
        raise EvalError(f"unknown likelihood {method!r}; choose one of {', '.join(METHODS)}")
    return method


@dataclass(frozen=True)
class Text:
    """A text to score: its token ids (no special tokens), the word of each token (``None`` for
    a token of no word), and the ids of the context before it."""

    ids: list[int]
    words: list[int | None]
    context: tuple[int, ...] = ()


@dataclass(frozen=True)
class Affixes:
    """The ids around every scored text and the ids the masked copies use."""

    prefix: list[int]
    suffix: list[int]
    mask_token_id: int
    pad_token_id: int

    @classmethod
    def of(cls, tokenizer) -> Affixes:
        if tokenizer.mask_token_id is None:
            raise EvalError("the tokenizer has no mask token: this is not a masked LM")
        prefix, suffix = special_affixes(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(prefix, suffix, tokenizer.mask_token_id, pad)


def _copies(index: int, text: Text, affixes: Affixes, word_l2r: bool):
    """The masked copies of one text: ``(text index, ids, scored position, target id)``."""
    head = [*affixes.prefix, *text.context]
    full = head + text.ids + affixes.suffix
    out = []
    for i, target in enumerate(text.ids):
        masked = [i]
        if word_l2r and text.words[i] is not None:
            masked += [j for j in range(i + 1, len(text.ids)) if text.words[j] == text.words[i]]
        ids = list(full)
        for j in masked:
            ids[len(head) + j] = affixes.mask_token_id
        out.append((index, ids, len(head) + i, target))
    return out


def pll(
    lm: MaskedLM,
    texts: Sequence[Text],
    affixes: Affixes,
    *,
    word_l2r: bool = False,
    batch_size: int = 64,
) -> list[float]:
    """The pseudo-log-likelihood (nats) of each text: ``pll``, or ``pll-word-l2r`` with
    ``word_l2r``. The copies go through the model ``batch_size`` at a time, texts of similar
    length together."""
    return [total for total, _ in pll_greedy(lm, texts, affixes, word_l2r, batch_size)]


def pll_greedy(
    lm: MaskedLM, texts: Sequence[Text], affixes: Affixes, word_l2r: bool, batch_size: int
) -> list[tuple[float, bool]]:
    """:func:`pll`, each with whether every token was the model's first choice where it was
    masked."""
    if batch_size < 1:
        raise EvalError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i].context) + len(texts[i].ids))
    copies = (c for i in order for c in _copies(i, texts[i], affixes, word_l2r))  # made as used
    totals = [0.0] * len(texts)
    greedy = [True] * len(texts)
    device = lm.device
    with torch.inference_mode():
        while chunk := list(itertools.islice(copies, batch_size)):
            ids, attention = pad_rows([torch.tensor(c[1]) for c in chunk], affixes.pad_token_id)
            rows = torch.arange(len(chunk), device=device)
            columns = torch.tensor([c[2] for c in chunk], device=device)
            logits = lm.logits_at(ids.to(device), attention.to(device), None, (rows, columns))
            targets = torch.tensor([c[3] for c in chunk], device=device)
            scores = logits.double().log_softmax(-1).gather(1, targets[:, None])[:, 0]
            best = (logits.argmax(-1) == targets).tolist()
            for (index, *_), score, first in zip(chunk, scores.tolist(), best, strict=True):
                totals[index] += score
                greedy[index] = greedy[index] and first
    return list(zip(totals, greedy, strict=True))


def elbo(
    lm: MaskedLM,
    texts: Sequence[Text],
    affixes: Affixes,
    *,
    mc_num: int = 32,
    seed: int = 0,
    batch_size: int = 64,
) -> list[float]:
    """The masked-diffusion bound on each text's log-likelihood (nats), ``mc_num`` draws seeded
    by ``seed`` and the text's ids (:func:`~diffutron_eval.likelihood.score_continuations`)."""
    items = [(list(t.context), t.ids) for t in texts]
    scored = elbo_scored(lm, items, affixes, mc_num=mc_num, seed=seed, batch_size=batch_size)
    return [s.loglikelihood for s in scored]


def elbo_scored(
    lm: MaskedLM,
    items: Sequence[tuple[list[int], list[int]]],
    affixes: Affixes,
    *,
    mc_num: int,
    seed: int,
    batch_size: int,
) -> list[Scored]:
    """:func:`elbo` of ``(context, continuation)`` ids, each with its greediness."""
    return score_continuations(
        lm,
        items,
        prefix=affixes.prefix,
        suffix=affixes.suffix,
        mask_token_id=affixes.mask_token_id,
        pad_token_id=affixes.pad_token_id,
        mc_num=mc_num,
        batch_size=batch_size,
        seed=seed,
    )


def score_texts(
    lm: MaskedLM,
    texts: Sequence[Text],
    affixes: Affixes,
    *,
    method: str = "pll",
    batch_size: int = 64,
    mc_num: int = 32,
    seed: int = 0,
) -> list[float]:
    """Each text's log-likelihood by ``method`` (one of :data:`METHODS`)."""
    if check_method(method) == "elbo":
        return elbo(lm, texts, affixes, mc_num=mc_num, seed=seed, batch_size=batch_size)
    return pll(lm, texts, affixes, word_l2r=method == "pll-word-l2r", batch_size=batch_size)


def encode(tokenizer, sentence: str) -> Text:
    """A sentence as a :class:`Text`: its ids without special tokens and their words."""
    if not getattr(tokenizer, "is_fast", False):
        raise EvalError("scoring by words needs a fast (Rust) tokenizer, which knows its words")
    encoded = tokenizer(sentence, add_special_tokens=False)
    if not encoded["input_ids"]:
        raise EvalError(f"nothing to score: {sentence!r} has no tokens")
    return Text(list(encoded["input_ids"]), list(encoded.word_ids()))


def sentence_scores(
    model,
    tokenizer,
    sentences: Sequence[str],
    *,
    method: str = "pll",
    batch_size: int = 64,
    mc_num: int = 32,
    seed: int = 0,
) -> list[float]:
    """The log-likelihood (nats) of each sentence under a masked LM (a Hugging Face model or a
    :class:`~diffutron_sample.MaskedLM`), by ``method``: ``pll``, ``pll-word-l2r`` or ``elbo``."""
    check_method(method)
    lm = model if isinstance(model, MaskedLM) else MaskedLM(model.eval())
    texts = [encode(tokenizer, s) for s in sentences]
    affixes = Affixes.of(tokenizer)
    return score_texts(
        lm, texts, affixes, method=method, batch_size=batch_size, mc_num=mc_num, seed=seed
    )


def pair_accuracy(good: Sequence[float], bad: Sequence[float]) -> float:
    """The share of pairs whose good sentence scores at least as high as its bad one (lm-eval's
    ``acc``: the first of two equal choices wins)."""
    if len(good) != len(bad) or not good:
        raise EvalError("pair_accuracy needs as many good as bad scores, at least one")
    return sum(g >= b for g, b in zip(good, bad, strict=True)) / len(good)
