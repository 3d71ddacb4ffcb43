"""Property tests: the prompts-file reader, the sampler configuration (from values and from a
model folder's file) and the chat's /set parser raise nothing but SampleError, whatever they get."""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffutron_sample import ChatSession, SampleError, SamplerConfig, read_prompts

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
FIELDS = [
    "steps",
    "max_new_tokens",
    "block_length",
    "temperature",
    "remasking",
    "stochastic_transfer",
    "cfg_scale",
    "repetition_penalty",
    "threshold",
    "early_stop",
    "top_p",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=12).map("".join)
    | st.sampled_from(["low_confidence", "random", 8, 16, 32, 0.9, 1.0])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
lines = st.one_of(
    st.binary(max_size=60),
    st.dictionaries(st.sampled_from(["prompt", "messages", "id"]), json_values, max_size=3).map(
        lambda r: json.dumps(r).encode()
    ),
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "system", "tool"]),
                "content": json_values,
            }
        ),
        max_size=3,
    ).map(lambda m: json.dumps({"messages": m}).encode()),
)


@FUZZ
@given(data=st.lists(lines, max_size=6).map(lambda parts: b"\n".join(parts)))
def test_prompts_files_give_prompts_or_sample_error(tmp_path, data):
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(data)
    try:
        found = read_prompts(path)
    except SampleError as exc:
        assert "\n" not in str(exc)
        return
    assert found.rows
    for row in found.rows:
        if isinstance(row.prompt, str):
            assert row.prompt.strip() and row.prompt.encode("utf-8")
        else:
            assert row.prompt[-1]["role"] == "user"
            assert all(m["content"].encode("utf-8") for m in row.prompt)


@FUZZ
@given(values=st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=6))
def test_sampler_settings_are_valid_or_sample_error(values):
    try:
        config = SamplerConfig.from_dict(values)
    except SampleError as exc:
        assert "\n" not in str(exc)
        return
    assert config.max_new_tokens % config.block_length == 0
    assert math.isfinite(config.temperature) and config.temperature >= 0
    assert config.threshold is None or 0 < config.threshold <= 1


@FUZZ
@given(data=st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode()))
def test_a_sampler_config_file_is_valid_or_sample_error(tmp_path, data):
    (tmp_path / "sampler_config.json").write_bytes(data)
    try:
        SamplerConfig.from_pretrained(tmp_path)
    except SampleError as exc:
        assert "sampler_config.json" in str(exc) and "\n" not in str(exc)


@FUZZ
@given(
    text=st.text(max_size=40)
    | st.tuples(st.sampled_from(FIELDS), st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}")
)
def test_chat_set_changes_a_setting_or_says_why_not(text):
    session = ChatSession(None, None, SamplerConfig(steps=32, max_new_tokens=32, block_length=8))
    before = session.config
    try:
        key, config = session.set_text(text)
    except SampleError as exc:
        assert "\n" not in str(exc)
        assert session.config == before  # a refused /set changes nothing
        return
    assert session.config == config and hasattr(config, key)
