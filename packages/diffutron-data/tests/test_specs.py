"""The data stage's specs: presets resolved in one place, every choice overridable, bad choices
refused before anything is loaded."""

import pytest

from diffutron_data import CPTDataSpec, DataError, SFTDataSpec, load_tokenizer, prepare_data


def test_a_cpt_spec_takes_the_presets_choices_unless_overridden():
    tiny = CPTDataSpec("tiny").resolve()
    assert (tiny.tokenizer_name, tiny.max_length) == ("tiny", 256)
    assert [str(s) for p in tiny.pools for s in p.sources] == ["embedded:corpus-train"]
    own = CPTDataSpec("paper", sources=("notes.txt",), sample_size=5, max_length=64).resolve()
    assert own.tokenizer_name == "jhu-clsp/mmBERT-base" and own.max_length == 64
    assert [(p.name, p.sample_size) for p in own.pools] == [("sources", 5)]


def test_an_sft_spec_falls_back_to_the_presets_tasks_then_to_every_task():
    assert SFTDataSpec("tiny").resolve().synthetic_tasks == ("is_question", "first_word", "repeat")
    assert SFTDataSpec("tiny", synthetic_tasks=("plural",)).resolve().synthetic_tasks == ("plural",)
    paper = SFTDataSpec("paper", 2).resolve()
    assert (paper.synthetic_per_task, paper.synthetic_tasks) == (0, ())
    assert len(SFTDataSpec("paper", synthetic=3).resolve().synthetic_tasks) == 6
    assert SFTDataSpec("paper", 2).default_output_dir() == "runs/data/sft-paper-stage2"


def test_an_unknown_task_or_preset_is_refused_before_any_tokenizer_loads():
    with pytest.raises(DataError, match=r"unknown synthetic task.*bogus"):
        SFTDataSpec("paper", synthetic=5, synthetic_tasks=("bogus",)).resolve()
    with pytest.raises(DataError, match="unknown preset 'huge'"):
        CPTDataSpec("huge").resolve()


def test_prepare_data_builds_what_the_plan_fingerprints(tmp_path):
    spec = SFTDataSpec("tiny", synthetic=4, max_length=64)
    manifest, folder = prepare_data(spec, tmp_path / "sft")
    assert folder == tmp_path / "sft" and (folder / "manifest.json").is_file()
    assert manifest["fingerprint"] == spec.resolve().fingerprint(load_tokenizer("tiny"))
    assert manifest["extra"]["conversations"] == 12  # 4 rows of each of the preset's 3 tasks
