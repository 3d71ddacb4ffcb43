import pytest

from diffutron_data import DataError
from diffutron_data.build import atomic_output, histogram


def test_histogram_bins_are_closed_on_the_right_pinned():
    bins = histogram([1, 2, 3, 4, 5, 8, 9, 10, 11], max_length=10)
    assert [(b["from"], b["to"], b["count"]) for b in bins] == [
        (1, 1, 1),
        (2, 2, 1),
        (3, 4, 2),
        (5, 8, 2),
        (9, 10, 2),
        (11, "inf", 1),
    ]


def test_atomic_output_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    with atomic_output(out, kind="test-data", overwrite=False) as (_, final):
        (final / "a").write_text("1", encoding="utf-8")
    assert (out / "a").read_text(encoding="utf-8") == "1"
    with (
        pytest.raises(RuntimeError),
        atomic_output(out, kind="test-data", overwrite=True) as (_, final),
    ):
        (final / "a").write_text("2", encoding="utf-8")
        raise RuntimeError("interrupted")
    assert (out / "a").read_text(encoding="utf-8") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / ".diffutron.json").is_file()  # marked as the project's own
    with (
        pytest.raises(DataError, match="not empty"),
        atomic_output(out, kind="test-data", overwrite=False),
    ):
        pass


def test_a_hub_source_counts_by_name_not_by_the_commit_it_resolved_to():
    from diffutron_data.build import recipe_fingerprint

    online = {"sources": [{"location": "owner/set", "hub": True, "resolved_revision": "abc"}]}
    offline = {"sources": [{"location": "owner/set", "hub": True, "resolved_revision": None}]}
    other = {"sources": [{"location": "owner/other", "hub": True, "resolved_revision": "abc"}]}
    assert recipe_fingerprint(online) == recipe_fingerprint(offline)  # resumes on- or offline
    assert recipe_fingerprint(online) != recipe_fingerprint(other)
