"""Chat formatting: dLLM's plain-text BERT chat template, rendered with Jinja like transformers.

The template is stored in every tokenizer we save (``tokenizer.chat_template``), so
``tokenizer.apply_chat_template`` and :func:`render_chat` give the same text.
"""

from __future__ import annotations

from functools import lru_cache

from diffutron_data.errors import DataError

END_MARKER = "[/Answer]"
"""Closes every answer; generation trims the output at its first occurrence."""

DLLM_BERT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}[Question]\n{{ message['content'] }}\n[/Question]\n\n"
    "{% elif message['role'] == 'assistant' %}[Answer]\n{{ message['content'] }}\n[/Answer]\n\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}[Answer]\n{% endif %}"
)
"""dLLM's BERT recipe, ``[Question]\\n{user}\\n[/Question]\\n\\n`` then
``[Answer]\\n{assistant}\\n[/Answer]\\n\\n``; the generation prompt ends after ``[Answer]\\n``.
A system message, if any, opens the text."""


@lru_cache(maxsize=8)
def _compiled(template: str):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
            template
        )
    except TemplateError as exc:
        raise DataError(f"chat template does not compile: {exc}") from None


def render_chat(
    messages: list[dict[str, str]],
    *,
    add_generation_prompt: bool = False,
    template: str = DLLM_BERT_CHAT_TEMPLATE,
) -> str:
    """Render ``[{"role": …, "content": …}, …]`` with a Jinja chat template."""
    return _compiled(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt
    )


def split_prompt_response(
    messages: list[dict[str, str]], *, template: str = DLLM_BERT_CHAT_TEMPLATE
) -> tuple[str, str]:
    """Split a conversation into the prompt (everything up to the generation prompt of the last
    assistant turn) and the response (that turn's content and the template's closing text).

    ``prompt + response == render_chat(messages)``; the template must render the prompt as a
    prefix of the whole conversation.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise DataError("a conversation must end with an assistant message")
    prompt = render_chat(messages[:-1], add_generation_prompt=True, template=template)
    full = render_chat(messages, template=template)
    if not full.startswith(prompt):
        raise DataError(
            "chat template does not render the prompt as a prefix of the whole conversation"
        )
    return prompt, full[len(prompt) :]
