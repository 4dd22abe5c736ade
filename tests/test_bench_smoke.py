"""The benchmark harness works (CI smoke): ``python -m bench.run --quick --no-write`` exits 0 and
prints the results table. Nothing here times anything; ``make bench`` measures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_prints_a_table() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--no-write"], cwd=ROOT,
                          capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Section | Benchmark | Result | Goal |" in proc.stdout
    assert "benchmark failed" not in proc.stdout, proc.stdout
