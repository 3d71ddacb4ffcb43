"""dLLM's plain-text BERT chat format: what Diffutron trains with, and what a masked LM without a
chat template of its own is given (the paper's released checkpoints, dLLM's BERT-chat models)."""

DLLM_BERT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}[Question]\n{{ message['content'] }}\n[/Question]\n\n"
    "{% elif message['role'] == 'assistant' %}[Answer]\n{{ message['content'] }}\n[/Answer]\n\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}[Answer]\n{% endif %}"
)
"""``[Question]\\n{user}\\n[/Question]\\n\\n`` then ``[Answer]\\n{assistant}\\n[/Answer]\\n\\n``;
the generation prompt ends after ``[Answer]\\n``. A system message, if any, opens the text."""

END_MARKER = "[/Answer]"
"""Closes every answer; generation trims the output at its first occurrence."""
