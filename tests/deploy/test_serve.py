"""`make serve`'s supervisor (config.serve): with the production settings it brings up nginx,
gunicorn, a Celery worker, beat and the log's sequencer; a signed API call through nginx is
answered, the sequencer signs a checkpoint within seconds, and one SIGTERM stops every process.
nginx missing: skipped loudly, a failure under REQUIRE_SERVICES=1 (the nginx_binary fixture).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from config.api.signing import sign
from ledger.models import LogCheckpoint
from merchants.services import api_key_issue
from tests.api.conftest import seller_id
from tests.conftest import REPO_ROOT
from tests.deploy.conftest import free_port, production_env, wait_until_answering

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# What each of the supervisor's children must be, told apart by its command line.
ROLES = {
    "gunicorn": lambda cmd: "gunicorn" in cmd,
    "nginx": lambda cmd: cmd.startswith("nginx: master"),
    "worker": lambda cmd: " worker " in cmd and "-Q log" not in cmd,
    "beat": lambda cmd: " beat " in cmd,
    "sequencer": lambda cmd: " worker " in cmd and "-Q log" in cmd,
}


def _children(pid: int) -> dict[int, str]:
    """The direct children of ``pid`` and their command lines (Linux /proc)."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        found[int(child)] = cmdline.decode().strip()
    return found


def _post_signed(address: str, key: str, secret: str, path: str, payload: object) -> int:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    request = urllib.request.Request(
        f"http://{address}{path}",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Chainfin-Timestamp": stamp,
            "Chainfin-Signature": sign(secret, stamp, "POST", path, body),
            "Idempotency-Key": f"serve-{uuid.uuid4()}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@pytest.mark.django_db(transaction=True)
def test_serve_runs_every_process_and_stops_them_on_sigterm(
    nginx_binary: str, tmp_path: Path, settings, marketplace, merchant, now
) -> None:
    # The supervisor's processes must open the secret this test seals: one fresh key for both.
    sealing_key = Fernet.generate_key().decode()
    settings.CHAINFIN_SEALING_KEYS = [sealing_key]
    issued = api_key_issue(marketplace=marketplace, now=now)
    db = connection.settings_dict
    listen = f"127.0.0.1:{free_port()}"
    env = production_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CHAINFIN_SEALING_KEYS=sealing_key,
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        GUNICORN_WORKERS="1",
        CELERY_WORKER_CONCURRENCY="1",
        # Plain HTTP on loopback; production redirects to HTTPS (check --deploy insists).
        DJANGO_SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--listen", listen, "--dir", str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: cleaned up below whatever happens
    )
    try:
        wait_until_answering(f"http://{listen}/healthz", serve, seconds=120)
        children = _children(serve.pid)
        assert sorted(
            role for role, matches in ROLES.items() for cmd in children.values() if matches(cmd)
        ) == sorted(ROLES), children

        before = LogCheckpoint.objects.count()
        event = {
            "type": "order.placed",
            "merchant": seller_id(merchant),
            "ref": "ORD-SERVE-1",
            "occurred_at": "2026-11-01T09:30:00Z",
            "data": {"currency": "EUR", "amount": "149.90"},
        }
        path = "/api/v1/events"
        status = _post_signed(listen, issued.key, issued.signing_secret, path, {"events": [event]})
        assert status == 201
        # Beat asks every second; the sequencer's own worker signs the round.
        deadline = time.monotonic() + 30
        while LogCheckpoint.objects.count() == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert LogCheckpoint.objects.filter(tree_size__gte=1).exists(), _tail(tmp_path)

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0, _tail(tmp_path)
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert alive == [], {pid: children[pid] for pid in alive}
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        log.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
