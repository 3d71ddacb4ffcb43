"""Checks of a setting's value at the edge: a number that is finite and in range, in one line."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, cast

from diffutron_common.errors import DiffutronError


def _bound(value: float, limit: float | None, *, low: bool, open_: bool) -> bool:
    if limit is None:
        return True
    if low:
        return value > limit if open_ else value >= limit
    return value < limit if open_ else value <= limit


def _describe(
    minimum: float | None, maximum: float | None, min_open: bool, max_open: bool, integer: bool
) -> str:
    kind = "a whole number" if integer else "a number"
    if minimum is not None and maximum is not None:
        left, right = "(" if min_open else "[", ")" if max_open else "]"
        return f"{kind} in {left}{minimum}, {maximum}{right}"
    if minimum is not None:
        return f"{kind} {'>' if min_open else '>='} {minimum}"
    if maximum is not None:
        return f"{kind} {'<' if max_open else '<='} {maximum}"
    return f"a finite {kind[2:]}" if not integer else kind


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    integer: bool = False,
    error: type[Exception] = DiffutronError,
    hint: str = "",
) -> Any:
    """Return ``value`` when it is a finite number (a whole one with ``integer``) within the
    bounds; else raise ``error`` naming the setting, the value and what it must be."""
    expected = _describe(minimum, maximum, min_open, max_open, integer)
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        raise error(f"{name} must be {expected}{extra}, got {value!r}")
    try:
        finite = integer or math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        shown = (
            value if isinstance(value, float) else f"{str(value)[:12]}… ({len(str(value))} digits)"
        )
        raise error(f"{name} must be a finite number{extra}, got {shown}")
    number = cast(float, value)  # a real number here; typeshed's Real lacks float's comparisons
    if not (
        _bound(number, minimum, low=True, open_=min_open)
        and _bound(number, maximum, low=False, open_=max_open)
    ):
        raise error(f"{name} must be {expected}{extra}, got {value}")
    return value
