from diffutron_data import SPECIAL_TOKENS, build_tiny_tokenizer
from diffutron_data.tokenizer import tiny_tokenizer_path


def test_special_tokens_sit_at_mmbert_ids(tokenizer):
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id) == (3, 4)


def test_sequences_are_wrapped_in_bos_eos_and_round_trip(tokenizer):
    text = "İstanbul'da ılık bir sabah: Çağlar, şöyle düşündü — ağaçlar güzel mi?"
    encoded = tokenizer(text)["input_ids"]
    assert encoded[0] == 2 and encoded[-1] == 1
    assert tokenizer.decode(encoded, skip_special_tokens=True) == text
    assert tokenizer.unk_token_id not in encoded
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == encoded[1:-1]


def test_vocabulary_is_a_few_thousand_tokens(tokenizer):
    assert 2000 <= len(tokenizer) <= 8192


def test_rebuilding_gives_the_shipped_tokenizer_byte_for_byte(tmp_path):
    build_tiny_tokenizer(tmp_path)
    for name in ("tokenizer.json", "chat_template.jinja", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == (tiny_tokenizer_path() / name).read_bytes(), name
