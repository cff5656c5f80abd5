"""`make demo` under a real pseudo-terminal: one Ctrl-C stops its servers, quietly, exit 0.

The bug this guards against: a recipe trap that re-signalled its own shell printed thousands of
"Warm shutdown" lines, a RecursionError and "make: *** Segmentation fault".
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: every process on the terminal has gone
        return b"<eof>"


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _ctrl_c_demo(tmp_path: Path, ready: Callable[[bytes, Path, int], bool]) -> None:
    """Run ``make demo`` on a pseudo-terminal, press Ctrl-C once ``ready``; check it ended well."""
    port = _free_port()
    demo_dir = tmp_path / "demo"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: make on the pseudo-terminal, as a user would type it
        os.chdir(ROOT)
        os.execvpe(
            "make", ["make", "demo", f"DEMO_ADDR=127.0.0.1:{port}", f"DEMO_DIR={demo_dir}"], env
        )
    output = b""
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            output += _read(fd, 0.2)
            assert b"<eof>" not in output, output.decode(errors="replace")
            if ready(output, demo_dir, port):
                break
        else:
            pytest.fail("the demo never came up:\n" + output.decode(errors="replace"))

        os.write(fd, b"\x03")  # Ctrl-C: the terminal signals its foreground process group
        deadline = time.monotonic() + 60
        while b"<eof>" not in output and time.monotonic() < deadline:
            output += _read(fd, 0.5)
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.close(fd)

    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    for noise in ("Interrupt", "RecursionError", "Segmentation fault", "Traceback", "Error"):
        assert noise not in text, text
    worker_log = demo_dir / "worker.log"
    assert not worker_log.exists() or worker_log.read_text().count("Warm shutdown") <= 1
    assert _processes_mentioning(str(demo_dir)) == []
    assert not _serving(port)


def _all_up(output: bytes, demo_dir: Path, port: int) -> bool:
    worker_log = demo_dir / "worker.log"
    worker_ready = worker_log.exists() and "ready." in worker_log.read_text()
    return b"Chainfin demo" in output and worker_ready and _serving(port)


def _servers_starting(output: bytes, demo_dir: Path, port: int) -> bool:
    """The supervisor has started the witness, its last server: all four are still importing."""
    return any("witness" in line for line in _processes_mentioning(f"--state={demo_dir}"))


def test_ctrl_c_stops_the_demo_once_and_quietly(tmp_path: Path) -> None:
    _ctrl_c_demo(tmp_path, _all_up)


def test_ctrl_c_while_the_servers_start_is_just_as_quiet(tmp_path: Path) -> None:
    # CI once caught the witness still parsing its key: SIGINT printed a KeyboardInterrupt.
    _ctrl_c_demo(tmp_path, _servers_starting)
