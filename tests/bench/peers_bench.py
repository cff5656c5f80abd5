"""Chainfin's journal transfers against django-hordak's, same machine, one after the other.

    .venv/bin/python -m tests.bench.peers_bench [--procs 1,4] [--seconds D] [--preload N]
                                                [--repeat R]

For each process count, R times: the django-hordak harness in ../shared/peers/hordak (its
run.sh builds its own virtualenv in /tmp and uses its own database, PEER_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/peer_hordak), then ``tests.bench.transfers_bench`` with the
same process count, duration, account count (50, the harness's) and preload; never both at
once. Prints each pair of figures, the medians and their ratio against the target: Chainfin at
least 1.5 times hordak at every process count. Exit status 1 if either side fails its own
checks (the ledger balances, the counts match) or prints no figure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.bench._setup import Figure, Row, figure_row, table_print, verdict

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT.parent / "shared" / "peers" / "hordak" / "run.sh"
ACCOUNTS = 50  # the harness's N_ACCOUNTS, not an option there
TARGET_RATIO = 1.5
_HORDAK = re.compile(r"^hordak_orm_transfers_per_s=([0-9.]+) ", re.MULTILINE)
_CHAINFIN = re.compile(r"^chainfin_transfers_per_s=([0-9.]+) ", re.MULTILINE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--procs", default="1,4", help="process counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--preload", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not HARNESS.exists():
        raise SystemExit(f"bench: the peer harness is not at {HARNESS}")
    counts = [int(p) for p in args.procs.split(",")]
    shared = ["--seconds", f"{args.seconds:g}", "--preload", str(args.preload)]
    print(
        f"peers       django-hordak (its harness, {HARNESS.parent}) and Chainfin, {ACCOUNTS}"
        f" accounts, {args.seconds:g} s, preload {args.preload:,}, {args.repeat} run(s) each,"
        " one after the other"
    )
    rows: list[Row] = []
    failed = False
    for procs in counts:
        hordak = Figure(f"hordak transfer_to, {procs} process(es)", "transfers/s")
        chainfin = Figure(f"Chainfin transfers, {procs} process(es)", "transfers/s")
        for rep in range(1, args.repeat + 1):
            for figure, command, pattern in (
                (hordak, [str(HARNESS), "--procs", str(procs), *shared], _HORDAK),
                (
                    chainfin,
                    [
                        sys.executable,
                        "-m",
                        "tests.bench.transfers_bench",
                        *("--procs", str(procs), "--accounts", str(ACCOUNTS)),
                        *shared,
                    ],
                    _CHAINFIN,
                ),
            ):
                rate = _run(command, pattern)
                if rate is None:
                    failed = True
                    continue
                figure.samples.append(rate)
            print(
                f"repetition {rep}/{args.repeat}, {procs} process(es): hordak"
                f" {_last(hordak)}, Chainfin {_last(chainfin)} transfers/s",
                flush=True,
            )
        if not (hordak.samples and chainfin.samples):
            continue
        ratio = chainfin.median / hordak.median
        rows += [
            figure_row(hordak),
            figure_row(chainfin),
            Row(
                "  Chainfin / hordak",
                f"{ratio:.2f}x",
                "",
                f">= {TARGET_RATIO}x",
                verdict(ratio, TARGET_RATIO),
            ),
        ]
    print()
    table_print(rows)
    return 1 if failed else 0


def _last(figure: Figure) -> str:
    return f"{figure.samples[-1]:,.0f}" if figure.samples else "-"


def _run(command: list[str], pattern: re.Pattern[str]) -> float | None:
    env = os.environ.copy()
    if "PEER_DATABASE_URL" in env:
        env["DATABASE_URL"] = env["PEER_DATABASE_URL"]
    else:
        env.pop("DATABASE_URL", None)  # the harness's own default, never the app's database
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    found = pattern.search(result.stdout)
    if result.returncode != 0 or found is None:
        print(
            f"FAILED ({result.returncode}): {' '.join(command)}\n"
            + result.stdout[-2000:]
            + result.stderr[-2000:],
            file=sys.stderr,
        )
        return None
    return float(found.group(1))


if __name__ == "__main__":
    sys.exit(main())
