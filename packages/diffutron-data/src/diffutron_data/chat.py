"""Chat formatting: dLLM's plain-text BERT chat template, rendered with Jinja like transformers.

The template is stored in every tokenizer we save (``tokenizer.chat_template``), so
``tokenizer.apply_chat_template`` and :func:`render_chat` give the same text.
"""

from __future__ import annotations

from functools import lru_cache

from diffutron_common.chat import DLLM_BERT_CHAT_TEMPLATE, END_MARKER
from diffutron_data.errors import DataError

__all__ = ["DLLM_BERT_CHAT_TEMPLATE", "END_MARKER", "render_chat", "split_prompt_response"]


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
