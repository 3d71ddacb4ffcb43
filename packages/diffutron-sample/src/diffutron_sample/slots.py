"""One device buffer for every request's canvas: slot-indexed rows, right-aligned, so the rows of
a step are one ``index_select`` and its commits one ``index_copy_`` (vLLM's persistent batch).

Row ``slot`` holds a canvas of ``length`` tokens in its last ``length`` columns; the columns before
it are padding. A step over rows whose longest canvas is ``width`` reads the last ``width``
columns: exactly the left-padded batch the model has always seen. The buffer grows (doubling its
rows, widening on the left) only when a request needs it, never per step.
"""

from __future__ import annotations

import torch


class CanvasSlots:
    """The canvases (``ids``) and the tokens guidance hides (``given``) of the requests in
    flight, one row each."""

    def __init__(self, device: torch.device, pad_token_id: int, rows: int = 8, width: int = 64):
        self.device, self.pad_token_id = device, pad_token_id
        self.ids = torch.full((rows, width), pad_token_id, dtype=torch.long, device=device)
        self.given = torch.zeros((rows, width), dtype=torch.bool, device=device)
        self.free = list(range(rows))

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def place(self, canvas: torch.Tensor, given: torch.Tensor) -> int:
        """A free row for ``canvas`` (1-D, with its ``given`` flags); the buffer grows to fit."""
        length = len(canvas)
        if not self.free:
            self._grow(rows=2 * self.ids.shape[0], width=self.width)
        if length > self.width:
            self._grow(rows=self.ids.shape[0], width=max(length, 2 * self.width))
        slot = self.free.pop(0)
        self.ids[slot].fill_(self.pad_token_id)
        self.given[slot].fill_(False)
        self.ids[slot, self.width - length :] = canvas
        self.given[slot, self.width - length :] = given
        return slot

    def _grow(self, rows: int, width: int) -> None:
        old_rows, old_width = self.ids.shape
        ids = torch.full((rows, width), self.pad_token_id, dtype=torch.long, device=self.device)
        given = torch.zeros((rows, width), dtype=torch.bool, device=self.device)
        ids[:old_rows, width - old_width :] = self.ids
        given[:old_rows, width - old_width :] = self.given
        self.ids, self.given = ids, given
        self.free += list(range(old_rows, rows))

    def release(self, slot: int) -> None:
        self.free.append(slot)
        self.free.sort()

    def view(self, slot: int, length: int) -> torch.Tensor:
        """The live canvas of row ``slot`` (a view: it changes as the request is filled)."""
        return self.ids[slot, self.width - length :]

    def gather(self, slots: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, given)`` ``(B, width)`` of rows ``slots``: the left-padded batch."""
        start = self.width - width
        return (
            self.ids.index_select(0, slots)[:, start:],
            self.given.index_select(0, slots)[:, start:],
        )

    def write(self, slots: torch.Tensor, canvas: torch.Tensor) -> None:
        """Put the ``(B, width)`` rows back in their slots, in place."""
        self.ids[:, self.width - canvas.shape[1] :].index_copy_(0, slots, canvas)
