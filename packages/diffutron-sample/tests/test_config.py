import pytest

from diffutron_sample import SampleError, SamplerConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"max_new_tokens": 100, "block_length": 32},
            "block_length 32 does not divide max_new_tokens 100",
        ),
        (
            {"steps": 2, "max_new_tokens": 128, "block_length": 32},
            "steps 2 is fewer than the 4 blocks",
        ),
        (
            {"steps": 6, "max_new_tokens": 128, "block_length": 32},
            "do not split evenly over 4 blocks",
        ),
        ({"temperature": -0.5}, "temperature must be >= 0"),
        (
            {"remasking": "entropy"},
            "unknown remasking 'entropy'; use one of low_confidence, random",
        ),
        ({"cfg_scale": -1.0}, "cfg_scale must be >= 0"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\]"),
        (
            {"threshold": 0.9, "remasking": "random"},
            "threshold decoding ranks positions by confidence",
        ),
        ({"steps": 0}, "must all be >= 1"),
    ],
)
def test_impossible_settings_are_one_line_errors_naming_the_fix(changes, message):
    with pytest.raises(SampleError, match=message) as info:
        SamplerConfig(**changes)
    assert "\n" not in str(info.value)


def test_paper_preset():
    paper = SamplerConfig.paper(64)
    assert (paper.steps, paper.max_new_tokens, paper.block_length) == (64, 64, 32)
    assert (paper.temperature, paper.repetition_penalty, paper.remasking, paper.cfg_scale) == (
        0.1,
        1.2,
        "low_confidence",
        0.0,
    )
    assert SamplerConfig.paper(64, temperature=0.0).temperature == 0.0


def test_round_trip_through_a_model_directory(tmp_path):
    config = SamplerConfig(steps=32, max_new_tokens=64, block_length=16, threshold=0.9)
    config.save_pretrained(tmp_path)
    assert SamplerConfig.from_pretrained(tmp_path) == config
    assert SamplerConfig.from_pretrained(tmp_path, threshold=None).threshold is None
    assert SamplerConfig.from_pretrained(tmp_path / "elsewhere") == SamplerConfig()
    with pytest.raises(SampleError, match="unknown sampler setting"):
        SamplerConfig.from_dict({"top_p": 0.9})
