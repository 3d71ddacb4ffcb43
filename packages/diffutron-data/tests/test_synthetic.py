import pytest

from diffutron_data import DataError
from diffutron_data.embedded import nouns
from diffutron_data.synthetic import (
    TASKS,
    answer,
    make_task_rows,
    plural,
    synthetic_conversations,
    words,
)


def test_plural_by_vowel_harmony_pinned():
    assert [plural(n) for n in ("kitap", "ev", "şoför", "kuş", "gül", "elma", "köprü")] == [
        "kitaplar",
        "evler",
        "şoförler",
        "kuşlar",
        "güller",
        "elmalar",
        "köprüler",
    ]
    with pytest.raises(DataError, match="no vowel"):
        plural("xyz")


def test_answers_pinned():
    sentence = "Annem, bugün pazara gitti mi?"
    assert words(sentence) == ["Annem", "bugün", "pazara", "gitti", "mi"]
    assert answer("is_question", sentence) == "Evet"
    assert answer("is_question", "Hava güzel.") == "Hayır"
    assert answer("first_word", sentence) == "Annem"
    assert answer("last_word", "Kedi 'Tekir' uyudu.") == "uyudu"
    assert answer("word_count", sentence) == "5"
    assert answer("repeat", sentence) == sentence


def test_question_rows_are_balanced_and_deterministic():
    texts = [f"Soru {i} mi?" for i in range(10)] + [f"Cümle {i}." for i in range(40)]
    rows = make_task_rows("is_question", texts, n=12, seed=1)
    assert len(rows) == 12 and [r["output"] for r in rows].count("Evet") == 6
    assert rows == make_task_rows("is_question", texts, n=12, seed=1)
    assert rows != make_task_rows("is_question", texts, n=12, seed=2)


def test_every_task_makes_rows_that_become_conversations():
    for task in TASKS:
        texts = nouns() if task == "plural" else ["Bu bir deneme cümlesidir.", "Nasılsın?"]
        rows = make_task_rows(task, texts, n=2)
        assert rows and all(r["task"] == task and r["output"] for r in rows)
        conversation = synthetic_conversations(rows)[0]
        assert conversation[0]["content"].endswith("\n\n" + rows[0]["input"])
    with pytest.raises(DataError, match="unknown synthetic task"):
        make_task_rows("translate", ["a"])


def test_statements_become_yes_no_questions_by_vowel_harmony():
    from diffutron_data.synthetic import question_form

    assert question_form("Kedi bahçede uyuyor.") == "Kedi bahçede uyuyor mu?"
    assert question_form("Hava çok güzel!") == "Hava çok güzel mi?"
    assert question_form("Yarın okula gidecek") == "Yarın okula gidecek mi?"
    assert question_form("Bu kitap onun.") == "Bu kitap onun mu?"
    assert question_form("Çocuklar parkta.") == "Çocuklar parkta mı?"
    assert question_form("Göz gördü.") == "Göz gördü mü?"
    assert question_form("123.") is None


def test_is_question_rows_stay_balanced_when_the_texts_hold_few_questions():
    statements = [f"Cümle {i} burada duruyor." for i in range(40)]
    rows = make_task_rows("is_question", [*statements, "Nasılsın?"], n=20, seed=0)
    answers = [r["output"] for r in rows]
    assert len(rows) == 20 and answers.count("Evet") == answers.count("Hayır") == 10
    hayir = {r["input"] for r in rows if r["output"] == "Hayır"}
    made = [r["input"] for r in rows if r["output"] == "Evet" and r["input"] != "Nasılsın?"]
    assert all(q.endswith(" mu?") for q in made)
    assert not {q.removesuffix(" mu?") + "." for q in made} & hayir  # never the same sentence
