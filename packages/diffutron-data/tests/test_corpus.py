import json
from collections import Counter
from pathlib import Path

import datasets
import pytest

from diffutron_data import DataError, Pool, Source, build_cpt_corpus, corpus_split


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def lengths_of(texts, tokenizer):
    return [len(tokenizer(t)["input_ids"]) for t in texts]


@pytest.fixture(scope="module")
def ud_build(tmp_path_factory, ud_files, tokenizer):
    out = tmp_path_factory.mktemp("ud") / "corpus"
    pools = [Pool("ud", [Source(str(f)) for f in ud_files])]
    manifest = build_cpt_corpus(pools, tokenizer, out, tokenizer_name="tiny", max_length=24, seed=3)
    return out, pools, manifest


def test_ud_corpus_keeps_exactly_the_documents_within_max_length(ud_build, ud_files, tokenizer):
    out, _, manifest = ud_build
    documents = [
        line.strip()
        for f in ud_files
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    lengths = lengths_of(documents, tokenizer)
    expected_kept = Counter(
        tuple(tokenizer(d)["input_ids"]) for d, n in zip(documents, lengths, strict=True) if n <= 24
    )
    corpus = datasets.load_from_disk(str(out))
    assert max(corpus["length"]) <= 24
    assert Counter(tuple(ids) for ids in corpus["input_ids"]) == expected_kept
    too_long = sum(n > 24 for n in lengths)
    assert too_long > 0 and manifest["total"]["dropped"]["too_long"] == too_long
    assert manifest["rows"] == len(corpus) == len(documents) - too_long


def test_manifest_counts_add_up(ud_build):
    out, _, manifest = ud_build
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    for counts in [*manifest["pools"], manifest["total"]]:
        assert counts["read"] == counts["selected"] + counts["not_sampled"] + sum(
            counts["dropped"].values()
        )
    histogram_total = sum(b["count"] for b in manifest["token_length_histogram"])
    assert histogram_total == manifest["total"]["read"] - sum(
        v for k, v in manifest["total"]["dropped"].items() if k != "too_long"
    )
    assert (
        manifest["token_length_histogram"][-1]["count"] == manifest["total"]["dropped"]["too_long"]
    )
    assert manifest["tokens"] == sum(datasets.load_from_disk(str(out))["length"])
    assert [s["sha256"] for s in manifest["pools"][0]["sources"]]


def test_second_build_is_identical_byte_for_byte_even_with_two_processes(
    ud_build, tmp_path, tokenizer
):
    out, pools, _ = ud_build
    again = tmp_path / "again"
    build_cpt_corpus(
        pools, tokenizer, again, tokenizer_name="tiny", max_length=24, seed=3, num_proc=2
    )
    assert tree_bytes(again) == tree_bytes(out)
    other_seed = tmp_path / "other"
    build_cpt_corpus(pools, tokenizer, other_seed, tokenizer_name="tiny", max_length=24, seed=4)
    assert tree_bytes(other_seed) != tree_bytes(out)


def test_embedded_corpus_with_sampling(tmp_path, tokenizer):
    out = tmp_path / "embedded"
    pools = [
        Pool("train", [Source("embedded:corpus-train")], sample_size=50),
        Pool("heldout", [Source("embedded:corpus-heldout")]),
    ]
    manifest = build_cpt_corpus(pools, tokenizer, out, tokenizer_name="tiny", max_length=120)
    train, heldout = corpus_split()
    by_name = {p["name"]: p for p in manifest["pools"]}
    assert by_name["train"]["read"] == len(train) and by_name["heldout"]["read"] == len(heldout)
    assert by_name["train"]["selected"] == 50
    assert by_name["train"]["not_sampled"] == by_name["train"]["kept_after_filter"] - 50
    heldout_kept = sum(n <= 120 for n in lengths_of(heldout, tokenizer))
    assert by_name["heldout"]["selected"] == heldout_kept
    corpus = datasets.load_from_disk(str(out))
    assert len(corpus) == 50 + heldout_kept and max(corpus["length"]) <= 120
    origins = Counter(o.split(":")[1] for o in corpus["origin"])
    assert origins == {"corpus-train": 50, "corpus-heldout": heldout_kept}
    # rows of 86-143 tokens cannot share a 120-token row: packing cannot help here
    assert 0 <= manifest["padding"]["packed"] <= manifest["padding"]["unpacked"]


def test_refuses_to_overwrite_and_leaves_no_partial_output(tmp_path, tokenizer):
    out = tmp_path / "c"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    pools = [Pool("p", [Source("embedded:corpus-heldout")])]
    with pytest.raises(DataError, match="exists and is not empty"):
        build_cpt_corpus(pools, tokenizer, out, tokenizer_name="tiny")
    with pytest.raises(DataError, match="did not make"):  # --overwrite replaces only our own
        build_cpt_corpus(pools, tokenizer, out, tokenizer_name="tiny", overwrite=True)
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    built = tmp_path / "built"
    first = build_cpt_corpus(pools, tokenizer, built, tokenizer_name="tiny")
    bad = [Pool("p", [Source(str(tmp_path / "missing.txt"))])]
    with pytest.raises(DataError, match="file not found"):
        build_cpt_corpus(bad, tokenizer, built, tokenizer_name="tiny", overwrite=True)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt: no usable text \(it is empty\)"):
        build_cpt_corpus(
            [Pool("p", [Source(str(empty))])],
            tokenizer,
            built,
            tokenizer_name="tiny",
            overwrite=True,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "c", "empty.txt"]  # no temps
    assert json.loads((built / "manifest.json").read_text(encoding="utf-8")) == first
    again = build_cpt_corpus(pools, tokenizer, built, tokenizer_name="tiny", seed=1, overwrite=True)
    assert again["seed"] == 1 and again["fingerprint"] != first["fingerprint"]


def test_bad_lines_are_counted_in_the_manifest(tmp_path, tokenizer):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "Bir."}\n{oops\n{"text": ""}\n{"text": "Iki."}\n', encoding="utf-8")
    manifest = build_cpt_corpus(
        [Pool("p", [Source(str(path))])], tokenizer, tmp_path / "out", tokenizer_name="tiny"
    )
    assert manifest["total"]["dropped"] == {"empty": 1, "malformed_json": 1, "too_long": 0}
    assert manifest["rows"] == 2
    assert manifest["problems"] == [
        f"{path}:2: malformed json (Expecting property name enclosed in double quotes); skipped",
        f"{path}:3: empty; skipped",
    ]


def test_impossible_configs(tmp_path, tokenizer):
    pools = [Pool("p", [Source("embedded:corpus-heldout")])]
    with pytest.raises(DataError, match="max_length"):
        build_cpt_corpus(pools, tokenizer, tmp_path / "a", tokenizer_name="tiny", max_length=0)
    with pytest.raises(DataError, match="at least one source"):
        build_cpt_corpus([Pool("p", [])], tokenizer, tmp_path / "b", tokenizer_name="tiny")


def test_the_corpus_is_the_same_whatever_the_size_of_its_shuffle_buckets(
    tmp_path, tokenizer, monkeypatch
):
    """The final shuffle is written bucket by bucket (bounded memory): many small buckets give
    the same files as one, in the order of one seeded shuffle of the sampled pools."""
    from diffutron_data import stream

    pools = [
        Pool("train", [Source("embedded:corpus-train")], sample_size=50),
        Pool("heldout", [Source("embedded:corpus-heldout")]),
    ]
    one, many = tmp_path / "one", tmp_path / "many"
    build_cpt_corpus(pools, tokenizer, one, tokenizer_name="tiny", max_length=256, seed=5)
    buckets = []
    real = stream._bucketed
    monkeypatch.setattr(stream, "BUCKET_TOKENS", 500)
    monkeypatch.setattr(stream, "_bucketed", lambda *a: buckets.append(real(*a)) or buckets[-1])
    build_cpt_corpus(pools, tokenizer, many, tokenizer_name="tiny", max_length=256, seed=5)
    assert len(buckets[0]) > 10
    assert tree_bytes(one) == tree_bytes(many)
