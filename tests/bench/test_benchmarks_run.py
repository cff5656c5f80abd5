"""`make bench` keeps working: each benchmark runs end to end at its smallest sizes.

The figures of a --quick run mean nothing; what counts is that every script still builds its
world, runs both its measured path and its raw-SQL baseline, and checks what they wrote (a
schema change once broke the books benchmark's baseline without any test noticing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize(
    "script", ["ledger_bench", "books_bench", "log_bench", "settlement_bench", "recon_bench"]
)
def test_the_benchmark_runs(script: str, request: pytest.FixtureRequest) -> None:
    # A database of its own, so a developer's `make bench` on the same server is not disturbed.
    env = os.environ | {
        "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/chainfin_bench_smoke_{script}"
    }
    if script == "settlement_bench":  # its workers need the broker (skipped loudly when down)
        env["CELERY_BROKER_URL"] = request.getfixturevalue("redis_url")
    result = subprocess.run(
        [sys.executable, "-m", f"tests.bench.{script}", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "total run time" in result.stdout
