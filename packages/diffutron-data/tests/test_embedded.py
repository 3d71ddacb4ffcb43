from diffutron_data import (
    corpus_documents,
    corpus_sentences,
    corpus_split,
    instruction_conversations,
)
from diffutron_data.embedded import nouns, split_sentences


def test_corpus_is_large_and_varied_enough():
    documents = corpus_documents()
    assert sum(len(d) for d in documents) >= 60_000
    assert len(documents) >= 200 and len(set(documents)) == len(documents)
    text = " ".join(documents)
    for letter in "çğıİöşü":
        assert letter in text


def test_heldout_split_is_disjoint_and_covers_the_corpus():
    train, heldout = corpus_split()
    assert not set(train) & set(heldout)
    assert len(train) + len(heldout) == len(corpus_documents())
    assert len(heldout) == len(corpus_documents()) // 10


def test_instruction_set_has_at_least_200_pairs():
    conversations = instruction_conversations()
    assert len(conversations) >= 200
    assert all([m["role"] for m in c] == ["user", "assistant"] for c in conversations)


def test_sentence_splitting_pinned():
    assert split_sentences(
        "Bugün hava güzel. Yarın ne olacak? Bilmiyorum! 3 gün sonra görürüz."
    ) == [
        "Bugün hava güzel.",
        "Yarın ne olacak?",
        "Bilmiyorum!",
        "3 gün sonra görürüz.",
    ]
    assert len(corpus_sentences()) > 1000 and len(nouns()) >= 100
