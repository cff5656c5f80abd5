"""The demo's console leaves out its witness's polls of the checkpoint (one a second), and
keeps every other request and any server error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

# Each request as the demo's loggers see it: runserver's own line and django-structlog's.
_EMIT = """
import logging
import django
import structlog
django.setup()
server = logging.getLogger("django.server")
requests = structlog.get_logger("django_structlog.middlewares.request")
for request, status in [
    ("GET /api/v1/checkpoint", 200),
    ("GET /api/v1/checkpoint", 404),
    ("GET /api/v1/checkpoint?tree_size=7", 200),
    ("GET /portal/login/", 200),
    ("GET /api/v1/checkpoint", 503),
]:
    requests.info("request_started", request=request)
    requests.info("request_finished", request=request, code=status)
    server.info('"%s" %s %s', f"{request} HTTP/1.1", str(status), "310",
                extra={"status_code": status, "server_time": "07/Dec/2026 07:30:00"})
"""


def test_the_demo_console_leaves_out_checkpoint_polls_but_not_errors(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "CHAINFIN_DEMO_DIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", _EMIT], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = (run.stdout + run.stderr).splitlines()
    checkpoint = [line for line in lines if "/api/v1/checkpoint" in line]
    # Only the server error's end, and runserver's line for it (its start could not know).
    assert len(checkpoint) == 2, lines
    assert all("503" in line for line in checkpoint), checkpoint
    login = [line for line in lines if "/portal/login/" in line]
    assert len(login) == 3, lines
    assert any(line.startswith("[07/Dec/2026 07:30:00]") for line in login), login
