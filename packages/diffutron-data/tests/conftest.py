import os
from pathlib import Path

import pytest

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tokenizer():
    from diffutron_data import load_tokenizer

    return load_tokenizer("tiny")


@pytest.fixture(scope="session")
def ud_files():
    files = sorted((SHARED_DATA / "ud-turkish").glob("*.txt"))
    if not files:
        message = f"shared UD Turkish text not found under {SHARED_DATA}"
        if os.environ.get("CI"):  # CI lays shared/ beside the clone: its absence is a failure
            pytest.fail(message)
        pytest.skip(message)
    return files
