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

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
SERVER = "postgres://postgres@127.0.0.1:5432"
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize(
    "script", ["ledger_bench", "books_bench", "log_bench", "settlement_bench", "recon_bench"]
)
def test_the_benchmark_runs(script: str, request: pytest.FixtureRequest) -> None:
    # A database of its own, dropped afterwards: a developer's `make bench` on the same server,
    # and another test run (a parallel worker, a second checkout), each keep theirs.
    name = f"chainfin_bench_smoke_{script}_{os.getpid()}"
    try:
        _run_quick(script, name, request)
    finally:
        _databases_drop(name, f"{name}_template")  # the template: settlement_bench's copy


def _run_quick(script: str, database: str, request: pytest.FixtureRequest) -> None:
    env = os.environ | {"BENCH_DATABASE_URL": f"{SERVER}/{database}"}
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


def _databases_drop(*names: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
        for name in names:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))
