"""A short soak (benchmarks/serve_soak.py, 500 requests from 32 clients) against a real server
process on the tiny model: every request answered or refused as expected, nothing left in the
batch, and the process drains and exits 0 at the end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"

pytestmark = pytest.mark.slow


def test_500_mixed_requests_from_32_clients_have_no_unexpected_failure(model_dir):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import serve_soak
    finally:
        sys.path.remove(str(BENCHMARKS))
    figures = serve_soak.soak(model_dir, requests=500, concurrency=32, max_batch=8, span=(2, 16))
    counts = figures["counts"]
    assert counts["unexpected"] == 0, figures["unexpected"][:5]
    assert counts["ok"] > 250 and counts["expected"] > 30 and counts["cancelled"] > 10, counts
    assert figures["active_after"] == 0  # dropped and abandoned requests left the batch
    assert figures["exit_code"] == 0  # SIGTERM: drained and exited
