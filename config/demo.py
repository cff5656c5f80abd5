"""Run the demo's web server, Celery worker, beat and log witness together; one Ctrl-C stops all.

``make demo`` calls ``python -m config.demo``. On a terminal this process takes the foreground
itself (its own process group), so Ctrl-C reaches this supervisor only, and never ``make``: make
would otherwise report "Interrupt" and exit 130. Each server runs in a process group of its own
and is asked to stop once with SIGTERM, which every one of them takes as a graceful shutdown at
any moment: a SIGINT from the terminal would reach a server still importing Django as a
KeyboardInterrupt traceback. Whatever is still running after a grace period is killed with its
process group, so nothing outlives the demo.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

GRACE_SECONDS = 10.0


def _commands(addr: str, demo_dir: Path) -> list[list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "config"]
    return [
        [*celery, "worker", "--pool=solo", "--loglevel=INFO", f"--logfile={demo_dir}/worker.log"],
        [
            *celery,
            "beat",
            "--loglevel=INFO",
            f"--schedule={demo_dir}/celerybeat-schedule",
            f"--logfile={demo_dir}/beat.log",
        ],
        [python, "manage.py", "runserver", addr, "--noreload"],
        # The global log's witness, a separate party's process (make demo registered its key):
        # it cosigns each checkpoint that extends the last one it saw.
        [
            python,
            "manage.py",
            "witness",
            f"--url=http://{addr}",
            f"--key=@{demo_dir}/witness.key",
            f"--credentials={demo_dir}/witness-credentials.json",
            f"--state={demo_dir}/witness-state.json",
            f"--logfile={demo_dir}/witness.log",
            "--interval=1",
        ],
    ]


@contextlib.contextmanager
def _foreground() -> Iterator[None]:
    """Make this process group the terminal's foreground group, and give it back afterwards."""
    if not os.isatty(sys.stdin.fileno()):
        yield
        return
    tty = sys.stdin.fileno()
    previous = os.tcgetpgrp(tty)
    # A background group that touches the terminal gets SIGTTOU; we hand it over on purpose.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.setpgid(0, 0)
    os.tcsetpgrp(tty, os.getpgrp())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(tty, previous)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Ask each server to stop; after a grace period kill what is left, with its own children."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # the worker's warm shutdown: tasks finish
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # each server leads its own group
            child.wait()


def run(addr: str, demo_dir: Path) -> int:
    """Start the four servers and wait; return 0 after an interrupt, 1 if one died on its own."""
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with _foreground():
        # Our own interpreter and fixed arguments; nothing here comes from outside.
        children = [
            subprocess.Popen(cmd, process_group=0)  # noqa: S603
            for cmd in _commands(addr, demo_dir)
        ]
        while not received and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if not received:
            print("chainfin demo: a server stopped; stopping the others.", file=sys.stderr)
        _stop(children)
    return 0 if received else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:8000")
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    args = parser.parse_args()
    sys.exit(run(args.addr, args.dir))


if __name__ == "__main__":
    main()
