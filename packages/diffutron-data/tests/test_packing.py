import datasets
import pytest

from diffutron_data import (
    DataError,
    Pool,
    Source,
    build_cpt_corpus,
    pack_documents,
    pack_lengths,
    padding_fraction,
)


def test_pack_lengths_pinned_best_fit_decreasing():
    # sizes 7,5,4,3,2,1 into rows of 8: 7+1, 5+3, 4+2
    assert pack_lengths([4, 7, 2, 5, 1, 3], 8) == [[1, 4], [3, 5], [0, 2]]


def test_every_document_is_placed_once_and_no_row_overflows():
    lengths = [((i * 37) % 29) + 1 for i in range(500)]
    rows = pack_lengths(lengths, 32)
    assert sorted(i for row in rows for i in row) == list(range(500))
    assert all(sum(lengths[i] for i in row) <= 32 for row in rows)
    lower_bound = -(-sum(lengths) // 32)
    assert len(rows) <= lower_bound * 1.05


def test_too_long_documents_are_refused():
    with pytest.raises(DataError, match="longer than max_length 4"):
        pack_lengths([3, 5], 4)


def test_padding_fraction_pinned():
    # one batch [1, 3]: padded to 3 -> 2 pads of 6; to 4 -> 4 pads of 8
    assert padding_fraction([1, 3], batch_size=2) == pytest.approx(2 / 6)
    assert padding_fraction([1, 3], batch_size=2, pad_to=4) == pytest.approx(4 / 8)
    assert padding_fraction([], batch_size=2) == 0.0


def test_ud_text_packs_to_at_most_five_percent_padding_at_128(tmp_path, ud_files, tokenizer):
    build_cpt_corpus(
        [Pool("ud", [Source(str(f)) for f in ud_files])],
        tokenizer,
        tmp_path / "ud",
        tokenizer_name="tiny",
        max_length=128,
    )
    corpus = datasets.load_from_disk(str(tmp_path / "ud"))
    packed = pack_documents(corpus, 128)
    rows = [len(r) for r in packed["input_ids"]]
    assert max(rows) <= 128
    assert sum(rows) == sum(corpus["length"])  # nothing lost, nothing cut
    assert [sum(d) for d in packed["document_lengths"]] == rows
    fraction = padding_fraction(rows, batch_size=64, pad_to=128)
    assert fraction <= 0.05
    assert padding_fraction(corpus["length"], batch_size=64) > 0.3  # what packing saves


def test_the_stored_plan_gives_the_rows_packing_now_would(tmp_path, tokenizer, monkeypatch):
    """``prepare cpt`` stores its packing plan; the rows read from it lazily are the rows
    ``pack_documents`` would make from the corpus, in the same order (windows of 50 documents
    here, so that there are several)."""
    import datasets

    from diffutron_data import PackedRows, Pool, Source, build_cpt_corpus, packed_rows, packing
    from diffutron_data.packing import PLAN

    monkeypatch.setattr(packing, "WINDOW", 50)
    WINDOW = 50
    out = tmp_path / "corpus"
    pools = [Pool("all", [Source("embedded:corpus")])]
    manifest = build_cpt_corpus(pools, tokenizer, out, tokenizer_name="tiny", max_length=400)
    assert manifest["packing"] == {"file": PLAN, "max_length": 400, "window": WINDOW}
    corpus = datasets.load_from_disk(str(out))
    lazy = packed_rows(corpus, 400)
    assert isinstance(lazy, PackedRows)
    eager = pack_documents(corpus, 400, window=WINDOW)
    assert len(corpus) > 3 * WINDOW
    assert len(lazy) == len(eager) == manifest["padding"]["packed_rows"]
    assert [lazy[i] for i in range(len(lazy))] == list(eager)
    assert not isinstance(packed_rows(corpus, 300), PackedRows)  # another length: packed now
