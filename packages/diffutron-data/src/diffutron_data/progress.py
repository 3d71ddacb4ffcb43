"""Progress bars on every long loop, switched off by ``DIFFUTRON_NO_PROGRESS=1``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from diffutron_common import progress_enabled

T = TypeVar("T")


def progress(
    iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "doc"
) -> Iterator[T]:
    """``tqdm`` over ``iterable`` unless progress is switched off."""
    if not progress_enabled():
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True)
