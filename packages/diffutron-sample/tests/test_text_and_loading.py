import gc

import pytest
import torch

from diffutron_sample import (
    ChatSession,
    SampleError,
    SamplerConfig,
    batch_prompt_ids,
    decode_new,
    generate,
    load_model,
    prompt_ids,
    render_canvas,
    trim,
)

from .conftest import tiny_model, word_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_chat_and_raw_prompts(tokenizer):
    assert prompt_ids(tokenizer, "merhaba nasılsın ?") == ids(
        tokenizer, "[Question] merhaba nasılsın ? [/Question] [Answer]"
    )
    assert prompt_ids(tokenizer, "merhaba", chat=False) == [
        tokenizer.bos_token_id,
        *ids(tokenizer, "merhaba"),
    ]
    batch, mask = batch_prompt_ids(tokenizer, ["merhaba", "bugün hava çok güzel"], chat=False)
    assert mask.tolist() == [[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]]
    assert batch[0, 3:].tolist() == prompt_ids(tokenizer, "merhaba", chat=False)


def test_trim_stops_at_eos_pad_or_end_marker(tokenizer):
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    assert (
        trim(tokenizer, [*ids(tokenizer, "iyiyim teşekkürler"), eos, *ids(tokenizer, "kedi")])
        == "iyiyim teşekkürler"
    )
    assert trim(tokenizer, [*ids(tokenizer, "evet"), pad, pad]) == "evet"
    assert trim(tokenizer, ids(tokenizer, "evet [/Answer] [Question] ne")) == "evet"


def test_render_canvas_draws_masks(tokenizer):
    mask = tokenizer.mask_token_id
    tokens = [*ids(tokenizer, "bugün hava"), mask, mask, *ids(tokenizer, "güzel")]
    assert render_canvas(tokenizer, tokens, mask_symbol="_") == "bugün hava__güzel"


def test_tokenizer_without_chat_template_is_a_clear_error(tokenizer):
    bare = word_tokenizer()
    bare.chat_template = None
    with pytest.raises(SampleError, match="no chat template"):
        prompt_ids(bare, "merhaba")


def test_load_and_generate_from_a_model_directory(model_dir):
    model, tokenizer = load_model(str(model_dir), device="cpu")
    config = SamplerConfig(steps=8, max_new_tokens=8, block_length=8)
    input_ids, mask = batch_prompt_ids(tokenizer, ["merhaba", "bugün hava çok güzel"])
    canvas = generate(
        model, input_ids, config, mask_token_id=tokenizer.mask_token_id, attention_mask=mask
    )
    texts = decode_new(tokenizer, canvas, 8)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert (canvas != tokenizer.mask_token_id).all()


def test_loading_problems_are_one_line(tmp_path, model_dir):
    with pytest.raises(SampleError, match="cannot load directory") as info:
        load_model(str(tmp_path))
    assert "\n" not in str(info.value)
    bare = word_tokenizer()
    bare.mask_token = None
    target = tmp_path / "nomask"
    tiny_model(vocab_size=len(bare)).save_pretrained(target)
    bare.save_pretrained(target)
    with pytest.raises(SampleError, match="no mask token"):
        load_model(str(target))


def test_prompt_longer_than_the_model_is_refused():
    model = tiny_model(max_positions=32)
    with pytest.raises(SampleError, match="need 40 positions but the model has 32"):
        generate(
            model, torch.ones(1, 24, dtype=torch.long), SamplerConfig(16, 16, 8), mask_token_id=4
        )


def test_chat_session_keeps_history_resets_and_sets(model_dir):
    model, tokenizer = load_model(str(model_dir), device="cpu")
    session = ChatSession(
        model, tokenizer, SamplerConfig(steps=4, max_new_tokens=4, block_length=4)
    )
    first = session.ask("merhaba")
    assert session.history == [
        {"role": "user", "content": "merhaba"},
        {"role": "assistant", "content": first},
    ]
    session.ask("nasılsın ?")
    assert len(session.history) == 4
    assert session.set("temperature", "0.5").temperature == 0.5
    assert session.set("threshold", "none").threshold is None
    with pytest.raises(SampleError, match="unknown setting"):
        session.set("top_k", "3")
    with pytest.raises(SampleError, match="steps cannot be"):
        session.set("steps", "many")
    with pytest.raises(SampleError, match="does not divide"):
        session.set("block_length", "3")
    session.reset()
    assert session.history == []


def test_chat_session_drops_the_oldest_turns_when_the_history_is_too_long(model_dir, caplog):
    model, tokenizer = load_model(str(model_dir), device="cpu")
    session = ChatSession(
        model, tokenizer, SamplerConfig(steps=12, max_new_tokens=96, block_length=8)
    )
    session.history = [
        {"role": "user", "content": "bugün hava çok güzel " * 6},
        {"role": "assistant", "content": "evet"},
    ]
    session.ask("merhaba")
    assert session.history[0] == {"role": "user", "content": "merhaba"}
    assert "dropped the oldest turn" in caplog.text


def test_the_start_of_an_end_marker_or_stop_string_is_held_back_until_decided(tokenizer):
    from diffutron_sample.text import AnswerReader

    mask = tokenizer.mask_token_id
    reader = AnswerReader(tokenizer, stop=["ev okul"], end_markers=("kedi köpek",))
    growing = [*ids(tokenizer, "evet kedi ev"), mask]  # all but the last token are shown
    assert reader.read(growing, done=False).text == "evet"  # "kedi" may start the marker
    ended = reader.read(ids(tokenizer, "evet kedi köpek su"), done=True)
    assert (ended.text, ended.finish_reason) == ("evet", "stop")
    went_on = reader.read(ids(tokenizer, "evet kedi su"), done=True)
    assert went_on.text == "evet kedi su"  # it was not the marker after all
    before_stop = reader.read([*ids(tokenizer, "su ev okul"), mask], done=False)
    assert before_stop.text == "su"  # "ev" may start the stop string


def test_a_length_cut_answer_never_ends_with_a_piece_of_a_marker_or_stop_string(tokenizer):
    from diffutron_sample.text import AnswerReader

    reader = AnswerReader(tokenizer, stop=["ev okul"], max_tokens=2, end_markers=("kedi köpek",))
    marker = reader.read(ids(tokenizer, "evet kedi köpek"), done=True)
    assert (marker.text, marker.finish_reason, marker.tokens) == ("evet", "length", 1)
    stop = reader.read(ids(tokenizer, "su ev okul"), done=True)
    assert (stop.text, stop.finish_reason) == ("su", "length")
    plain = reader.read(ids(tokenizer, "su çay ekmek"), done=True)
    assert (plain.text, plain.finish_reason, plain.tokens) == ("su çay", "length", 2)


def test_freeze_heap_takes_what_lives_now_out_of_the_collectors_sight():
    from diffutron_sample import freeze_heap

    gc.unfreeze()
    kept = [[] for _ in range(3)]
    assert any(o is kept for o in gc.get_objects())
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # a collection no longer walks it
        later = [[]]
        assert any(o is later for o in gc.get_objects())  # what comes after is collected
    finally:
        gc.unfreeze()
