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
        (
            {"temperature": -0.5},
            r"temperature must be a number in \[0, 1000\] \(0 is greedy\), got -0.5",
        ),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"temperature": float("inf")}, "temperature must be a finite number"),
        ({"cfg_scale": float("nan")}, "cfg_scale must be a finite number"),
        ({"repetition_penalty": float("nan")}, "repetition_penalty must be a finite number"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"steps": "8"}, r"steps must be a whole number in \[1, 1000000\], got '8'"),
        ({"steps": 8.0}, r"steps must be a whole number in \[1, 1000000\], got 8.0"),
        ({"early_stop": "yes"}, "early_stop must be true or false"),
        (
            {"remasking": "entropy"},
            "unknown remasking 'entropy'; use one of low_confidence, random",
        ),
        ({"cfg_scale": -1.0}, r"cfg_scale must be a number in \[0, 1000\]"),
        ({"repetition_penalty": 0.0}, r"repetition_penalty must be a number in \[0.001, 1000"),
        ({"cfg_scale": 1e39}, r"cfg_scale must be a number in \[0, 1000"),
        ({"temperature": 5e-324}, "temperature must be 0 .greedy. or at least 0.001"),
        ({"threshold": 1.5}, r"threshold must be a number in \(0, 1\]"),
        (
            {"threshold": 0.9, "remasking": "random"},
            "threshold decoding ranks positions by confidence",
        ),
        ({"steps": 0}, r"steps must be a whole number in \[1, 1000000\], got 0"),
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
    # a model folder without the file (the paper's checkpoints, dLLM's models): the paper's
    assert SamplerConfig.from_pretrained(tmp_path / "elsewhere") == SamplerConfig.paper()
    assert SamplerConfig.from_pretrained(tmp_path / "elsewhere", max_new_tokens=64) == (
        SamplerConfig.paper(64)
    )
    with pytest.raises(SampleError, match="unknown sampler setting"):
        SamplerConfig.from_dict({"top_p": 0.9})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "must hold a JSON object of sampler settings, not a list"),
        (b'{"steps": "many"}', r"steps must be a whole number in \[1, 1000000\], got 'many'"),
        (b'{"temperature": NaN}', "temperature must be a finite number"),
        (b'{"top_k": 5}', "unknown sampler setting"),
        (b'{"steps": 8, "note": "\xff"}', "not valid UTF-8"),
    ],
)
def test_a_malformed_sampler_config_json_is_one_line_naming_the_file(tmp_path, content, message):
    (tmp_path / "sampler_config.json").write_bytes(content)
    with pytest.raises(SampleError, match=message) as info:
        SamplerConfig.from_pretrained(tmp_path)
    assert "sampler_config.json" in str(info.value) and "\n" not in str(info.value)
