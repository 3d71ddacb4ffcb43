import os
from pathlib import Path

import pytest

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The shared data folder: DIFFUTRON_SHARED_DATA when set, else shared/data beside the clone.
SHARED_DATA = (
    Path(os.environ["DIFFUTRON_SHARED_DATA"]).expanduser()
    if os.environ.get("DIFFUTRON_SHARED_DATA")
    else Path(__file__).resolve().parents[3].parent / "shared" / "data"
)


def missing_shared(message: str):
    """Skip; under CI, where shared/ lies beside the clone, fail instead, unless
    DIFFUTRON_SHARED_DATA names the folder explicitly (as on a user's machine)."""
    if os.environ.get("CI") and not os.environ.get("DIFFUTRON_SHARED_DATA"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ud_lines():
    lines = [
        line.strip()
        for path in sorted((SHARED_DATA / "ud-turkish").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not lines:
        missing_shared(
            f"shared UD Turkish text not found: no *.txt in {SHARED_DATA / 'ud-turkish'}"
        )
    return lines
