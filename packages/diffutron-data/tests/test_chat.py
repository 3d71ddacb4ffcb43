import pytest

from diffutron_data import DLLM_BERT_CHAT_TEMPLATE, DataError, render_chat, split_prompt_response

CONVERSATION = [
    {"role": "user", "content": "Merhaba"},
    {"role": "assistant", "content": "Merhaba!"},
]


def test_dllm_bert_format_pinned():
    assert (
        render_chat(CONVERSATION)
        == "[Question]\nMerhaba\n[/Question]\n\n[Answer]\nMerhaba!\n[/Answer]\n\n"
    )
    assert render_chat(CONVERSATION[:1], add_generation_prompt=True) == (
        "[Question]\nMerhaba\n[/Question]\n\n[Answer]\n"
    )


def test_prompt_and_response_concatenate_to_the_conversation():
    prompt, response = split_prompt_response(CONVERSATION)
    assert (prompt, response) == (
        "[Question]\nMerhaba\n[/Question]\n\n[Answer]\n",
        "Merhaba!\n[/Answer]\n\n",
    )


def test_shipped_tokenizer_carries_the_same_template(tokenizer):
    assert tokenizer.chat_template == DLLM_BERT_CHAT_TEMPLATE
    system = [{"role": "system", "content": "Kısa yaz."}, *CONVERSATION]
    assert tokenizer.apply_chat_template(system, tokenize=False) == render_chat(system)
    assert tokenizer.apply_chat_template(
        CONVERSATION[:1], tokenize=False, add_generation_prompt=True
    ) == render_chat(CONVERSATION[:1], add_generation_prompt=True)


def test_bad_conversations_and_templates():
    with pytest.raises(DataError, match="end with an assistant"):
        split_prompt_response(CONVERSATION[:1])
    with pytest.raises(DataError, match="does not compile"):
        render_chat(CONVERSATION, template="{% for m in messages %}")
    reordered = (
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<answer>{% endif %}"
    )
    with pytest.raises(DataError, match="prefix"):
        split_prompt_response(CONVERSATION, template=reordered)
