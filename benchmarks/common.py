"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

from pathlib import Path

UD_TURKISH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ud-turkish"
"""The shared Universal Dependencies Turkish sentences (CC BY-SA 4.0), read in place."""


def ud_sentences(folder: Path = UD_TURKISH) -> list[str]:
    """Every non-empty line of the UD Turkish text files, files in name order."""
    lines = [
        line.strip()
        for path in sorted(Path(folder).glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not lines:
        raise SystemExit(f"no UD Turkish text under {folder}")
    return lines
