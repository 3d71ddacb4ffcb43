"""Sampler settings written as text (a CLI flag, chat's ``/set``, lm-eval's model arguments, a
string in a server request): one parser, so every door means the same by the same text.

``none``, ``null``, ``off``, ``false`` and the empty text unset a setting that may be unset
(``threshold``, ``cache``, ``cache_interval``); a switch takes ``true``/``false``, ``yes``/``no``,
``on``/``off``, ``1``/``0``; numbers are numbers; anything else is a one-line error naming the
setting. :meth:`diffutron_sample.SamplerConfig.parse` is the entry point.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from diffutron_sample.errors import SampleError

UNSET_WORDS = ("none", "null", "off", "false", "")
"""How "not set" is written, in any case."""
BOOLEANS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
    "1": True,
    "0": False,
}


def _kinds(settings_class: type, name: str) -> tuple[set[type], bool]:
    """``(the value types of setting name, whether it may be None)``."""
    hints = typing.get_type_hints(settings_class)
    hint = hints[name]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    members = list(typing.get_args(hint)) if union else [hint]
    optional = type(None) in members
    kinds: set[type] = set()
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            kinds.add(str)
        elif member is not type(None):
            kinds.add(member)
    return kinds, optional


def parse_setting(settings_class: type, name: str, text: Any) -> Any:
    """The value of setting ``name`` of ``settings_class`` (a dataclass) written as ``text``,
    typed as the field is; a value that is not text is returned as it is."""
    fields = {f.name for f in dataclasses.fields(settings_class)}
    if name not in fields:
        raise SampleError(f"unknown setting {name!r}; settings: {', '.join(sorted(fields))}")
    kinds, optional = _kinds(settings_class, name)
    if optional and text is False:  # lm-eval's argument parser has already read "false"
        return None
    if not isinstance(text, str):
        return text
    written = text.strip()
    lowered = written.lower()
    if optional and lowered in UNSET_WORDS:
        return None
    try:
        if bool in kinds:
            return BOOLEANS[lowered]
        if int in kinds:
            return int(written)
        if float in kinds:
            return float(written)
    except (KeyError, ValueError, OverflowError):
        raise SampleError(f"{name} cannot be {written!r}") from None
    return written


def parse_settings(settings_class: type, texts: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``name: text`` of ``texts`` parsed by :func:`parse_setting`."""
    return {name: parse_setting(settings_class, name, text) for name, text in texts.items()}
