"""One reading of sampler settings written as text, whatever door they come in by."""

import pytest

from diffutron_sample import ChatSession, SampleError, SamplerConfig

UNSET = ["none", "None", "null", "NULL", "off", "false", "", "  none "]


@pytest.mark.parametrize("text", UNSET)
@pytest.mark.parametrize("name", ["threshold", "cache", "cache_interval"])
def test_every_spelling_of_unset_unsets_an_optional_setting(name, text):
    assert SamplerConfig.parse(name, text) is None
    assert SamplerConfig.parse(name, False) is None  # lm-eval has already read "false"


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("steps", "64", 64),
        ("temperature", "0.5", 0.5),
        ("temperature", "1", 1.0),
        ("threshold", "0.9", 0.9),
        ("cache", "dual", "dual"),
        ("cache", " prefix ", "prefix"),
        ("cache_interval", "4", 4),
        ("early_stop", "yes", True),
        ("early_stop", "OFF", False),
        ("stochastic_transfer", "1", True),
        ("remasking", "random", "random"),
        ("steps", 12, 12),  # not text: as it is
    ],
)
def test_text_is_typed_as_the_setting_is(name, text, value):
    parsed = SamplerConfig.parse(name, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("steps", "none", "steps cannot be 'none'"),
        ("steps", "8.7", "steps cannot be '8.7'"),
        ("early_stop", "perhaps", "early_stop cannot be 'perhaps'"),
        ("temperature", "warm", "temperature cannot be 'warm'"),
        ("top_k", "3", "unknown setting 'top_k'"),
    ],
)
def test_text_that_is_no_value_is_one_named_error(name, text, message):
    with pytest.raises(SampleError, match=message):
        SamplerConfig.parse(name, text)


def test_with_text_applies_and_checks_the_whole_config():
    config = SamplerConfig(steps=16, max_new_tokens=16, block_length=8, cache="dual")
    changed = config.with_text(cache="null", threshold="0.5", steps="32")
    assert (changed.cache, changed.threshold, changed.steps) == (None, 0.5, 32)
    with pytest.raises(SampleError, match="block_length 5 does not divide"):
        config.with_text(block_length="5")


def test_chat_set_reads_text_as_the_config_does(model):
    session = ChatSession(model, None, SamplerConfig(threshold=0.9, cache="prefix"))
    for key in ("threshold", "cache"):
        for word in ("off", "null", "none"):
            session.set(key, "0.5" if key == "threshold" else "dual")
            assert session.set(key, word).to_dict()[key] is None
