"""Progress bars on every long loop, switched off by ``DIFFUTRON_NO_PROGRESS=1``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("DIFFUTRON_NO_PROGRESS", "").lower() not in ("1", "true", "yes")


def progress(
    iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "doc"
) -> Iterator[T]:
    """``tqdm`` over ``iterable`` unless progress is switched off."""
    if not progress_enabled():
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True)
