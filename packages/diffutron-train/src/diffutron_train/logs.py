"""What a run logs in its folder: ``log.jsonl``, TensorBoard events and the loss plot.

:class:`RunLog` writes a record (step, loss, learning rate) as one JSON line in ``log.jsonl`` and
as scalars under ``tensorboard/``; :func:`read_log` reads the records back, as a resumed run left
them; :func:`plot_loss_curve` draws them as ``loss.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffutron_common import atomic_path

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

logger = logging.getLogger(__name__)


class RunLog:
    """The ``log`` callback of :func:`~diffutron_train.loop.train_loop`: one JSON line per record
    in ``log.jsonl`` and the same scalars as TensorBoard events under ``tensorboard/``."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / "log.jsonl"
        self._writer: SummaryWriter | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        logger.info("step %(step)d: loss %(loss).4f, lr %(lr).2e", record)
        with self.path.open("a+b") as handle:
            handle.seek(0, 2)
            if handle.tell():  # a run killed mid-line: start on a line of our own
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write((json.dumps(record) + "\n").encode("utf-8"))
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.output_dir / "tensorboard"))
        for key, value in record.items():
            if key != "step":
                self._writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl``, in order, keeping only the last of a step written twice
    (a run resumed from a checkpoint before its last logged step repeats those steps). A line a
    killed run left unfinished is passed over."""
    records: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records[record["step"]] = record
    return [records[k] for k in sorted(records)]


def plot_loss_curve(log_path: str | Path, png_path: str | Path, *, title: str = "") -> Path | None:
    """Draw training loss against step from ``log.jsonl`` as a PNG; None if nothing was logged."""
    records = read_log(log_path) if Path(log_path).is_file() else []
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot([r["step"] for r in records], [r["loss"] for r in records], marker=".", lw=1)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_title(title or Path(log_path).parent.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png_path
