"""Learnable synthetic instruction tasks made from any list of sentences (or nouns).

Graded in difficulty, each with an exact answer, so a tiny model's progress can be measured:

* ``is_question`` (classification): is the sentence a question? -> ``Evet`` / ``Hayır``
* ``first_word`` / ``last_word`` (extraction): the first / last word, without punctuation
* ``word_count`` (counting): how many words -> digits
* ``plural`` (morphology): the plural of a noun by vowel harmony (-lar / -ler)
* ``repeat`` (transformation): the sentence itself

Rows are Alpaca-schema dicts (``instruction``, ``input``, ``output``, plus ``task``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from diffutron_data.embedded import nouns, split_sentences
from diffutron_data.errors import DataError
from diffutron_data.instructions import row_to_messages
from diffutron_data.readers import corpus_split

INSTRUCTIONS = {
    "is_question": "Bu cümle bir soru mu? Evet ya da Hayır diye cevap ver.",
    "first_word": "Bu cümlenin ilk kelimesini yaz.",
    "last_word": "Bu cümlenin son kelimesini yaz.",
    "word_count": "Bu cümlede kaç kelime var? Sayıyla yaz.",
    "plural": "Bu kelimenin çoğulunu yaz.",
    "repeat": "Bu cümleyi aynen tekrar et.",
}
TASKS = tuple(INSTRUCTIONS)
BACK_VOWELS, FRONT_VOWELS = set("aıouâû"), set("eiöüî")
_WORD = re.compile(r"[\wÇĞİÖŞÜçğıöşüâîû'’-]+")


def words(sentence: str) -> list[str]:
    """Words of a sentence, punctuation stripped (apostrophes and hyphens kept inside words)."""
    return [w.strip("'’-") for w in _WORD.findall(sentence) if w.strip("'’-")]


def plural(noun: str) -> str:
    """``noun`` + ``lar`` after a back last vowel, ``ler`` after a front one (vowel harmony)."""
    for char in reversed(noun.lower()):
        if char in BACK_VOWELS:
            return noun + "lar"
        if char in FRONT_VOWELS:
            return noun + "ler"
    raise DataError(f"{noun!r} has no vowel to harmonise with")


QUESTION_PARTICLES = {"a": "mı", "ı": "mı", "â": "mı", "e": "mi", "i": "mi", "î": "mi"}
QUESTION_PARTICLES |= {"o": "mu", "u": "mu", "û": "mu", "ö": "mü", "ü": "mü"}


def question_form(sentence: str) -> str | None:
    """A statement turned into a yes/no question with the particle ``mı/mi/mu/mü`` by vowel
    harmony ("Kedi uyuyor." -> "Kedi uyuyor mu?"); None without a vowel to harmonise with."""
    body = sentence.rstrip().rstrip(".!…;:").rstrip()
    for char in reversed(body.lower()):
        if char in QUESTION_PARTICLES:
            return f"{body} {QUESTION_PARTICLES[char]}?"
    return None


def answer(task: str, text: str) -> str:
    """The exact answer of ``task`` on ``text`` (a sentence, or a noun for ``plural``)."""
    if task == "is_question":
        return "Evet" if text.rstrip().endswith("?") else "Hayır"
    if task == "first_word":
        return words(text)[0]
    if task == "last_word":
        return words(text)[-1]
    if task == "word_count":
        return str(len(words(text)))
    if task == "plural":
        return plural(text)
    if task == "repeat":
        return text
    raise DataError(f"unknown synthetic task {task!r}; known: {', '.join(TASKS)}")


def make_task_rows(
    task: str,
    texts: Sequence[str],
    *,
    n: int | None = None,
    balance: bool = True,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Up to ``n`` rows of one task from ``texts`` (all usable texts when ``n`` is None).

    For ``is_question`` with ``balance=True`` the rows alternate Evet / Hayır, so the
    majority-answer baseline is 50%; when the texts hold fewer than ``n / 2`` questions, statements
    not used for the Hayır rows become questions by :func:`question_form`.
    """
    if task not in INSTRUCTIONS:
        raise DataError(f"unknown synthetic task {task!r}; known: {', '.join(TASKS)}")
    usable = [t.strip() for t in texts if t.strip() and words(t)]
    rng = random.Random(f"{seed}-{task}")
    rng.shuffle(usable)
    if task == "is_question" and balance:
        yes = [t for t in usable if answer(task, t) == "Evet"]
        no = [t for t in usable if answer(task, t) == "Hayır"]
        if n is not None and len(yes) < n // 2:
            # Few real questions (prose has few): turn statements the "Hayır" rows do not use
            # into yes/no questions, so the rows stay balanced.
            spare = no[n // 2 :]
            made = [q for q in map(question_form, spare) if q is not None]
            yes += made[: n // 2 - len(yes)]
            rng.shuffle(yes)
        half = min(len(yes), len(no))
        if n is not None:
            half = min(half, n // 2)
        usable = [t for pair in zip(yes[:half], no[:half], strict=True) for t in pair]
    elif n is not None:
        usable = usable[:n]
    return [
        {"instruction": INSTRUCTIONS[task], "input": t, "output": answer(task, t), "task": task}
        for t in usable
    ]


def corpus_sentences(*, heldout: bool = False) -> list[str]:
    """Sentences of the embedded training (or held-out) corpus documents."""
    train, held = corpus_split()
    return [s for doc in (held if heldout else train) for s in split_sentences(doc)]


def synthetic_conversations(rows: Sequence[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Rows as chat conversations (the Alpaca rule: instruction, blank line, input)."""
    return [row_to_messages(row, "alpaca") for row in rows]


def check_tasks(tasks: Sequence[str]) -> None:
    """One :class:`DataError` naming every task of ``tasks`` that is not a synthetic task."""
    unknown = [t for t in tasks if t not in INSTRUCTIONS]
    if unknown:
        raise DataError(
            f"unknown synthetic task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}"
        )


def embedded_task_rows(
    tasks: Sequence[str], per_task: int, *, seed: int = 0
) -> list[dict[str, str]]:
    """Up to ``per_task`` rows of each task made from the embedded training corpus (nouns for
    ``plural``); the held-out documents are never used."""
    check_tasks(tasks)
    sentences = corpus_sentences()
    rows: list[dict[str, str]] = []
    for task in tasks if per_task else ():
        rows += make_task_rows(
            task, nouns() if task == "plural" else sentences, n=per_task, seed=seed
        )
    return rows
