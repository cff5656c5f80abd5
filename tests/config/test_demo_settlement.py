"""`make demo`'s worker settles a payout posted through the API within seconds (issue 9, item 7).

The demo runs on SQLite with kombu's filesystem broker: the payout's settlement work is enqueued
on commit of the API's append, the worker picks it up from the broker's folder and applies it.
Nothing here calls the service; only the running demo does.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.config.test_demo import ROOT, _free_port, _processes_mentioning, _serving

pytestmark = pytest.mark.slow
SETTLED_WITHIN_SECONDS = 10.0


def _post(port: int, credential: dict[str, str], payload: dict[str, object]) -> int:
    """POST ``payload`` to /api/v1/events, signed as the README's reference client signs."""
    path, body = "/api/v1/events", json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    message = f"{timestamp}.POST.{path}.{hashlib.sha256(body).hexdigest()}".encode()
    secret = credential["signing_secret"].encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {credential['api_key']}",
            "Content-Type": "application/json",
            "Chainfin-Timestamp": timestamp,
            "Chainfin-Signature": "v1=" + hmac.new(secret, message, hashlib.sha256).hexdigest(),
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_the_demo_worker_settles_a_payout_posted_through_the_api(tmp_path: Path) -> None:
    port, demo_dir = _free_port(), tmp_path / "demo"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    make = subprocess.Popen(
        ["make", "demo", f"DEMO_ADDR=127.0.0.1:{port}", f"DEMO_DIR={demo_dir}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as one below
    )
    try:
        worker_log = demo_dir / "worker.log"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            worker_ready = worker_log.exists() and "ready." in worker_log.read_text()
            if worker_ready and _serving(port):
                break
            assert make.poll() is None, make.stdout.read().decode() if make.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("the demo never came up")
        manage = [str(ROOT / ".venv/bin/python"), "manage.py"]
        demo_env = env | {"CHAINFIN_DEMO_DIR": str(demo_dir)}
        credential = json.loads(
            subprocess.run(
                [*manage, "create_api_key", "acme", "--label", "settlement-test"],
                cwd=ROOT,
                env=demo_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        db = sqlite3.connect(demo_dir / "chainfin.sqlite3", timeout=30)
        # The demo's part-repaid receivable on acme: the marketplace now pays the rest.
        invoice_ref, owed = db.execute(
            "SELECT a.invoice_ref, a.face_minor - a.paid_minor FROM financing_assignment a "
            "JOIN merchants_merchant m ON m.id = a.merchant_id "
            "WHERE a.status = 'assigned' AND a.paid_minor > 0 AND m.legal_name LIKE 'Schwarzwald%'"
        ).fetchone()
        amount = f"{owed // 100}.{owed % 100:02d}"
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "type": "payout.settled",
            "merchant": "A3F9K2QZ7",
            "ref": "ACM-PO-TEST-1",
            "occurred_at": at,
            "data": {
                "currency": "EUR",
                "amount": amount,
                "settled_on": at[:10],
                "lines": [{"invoice_ref": invoice_ref, "amount": amount}],
            },
        }

        posted = time.monotonic()
        assert _post(port, credential, {"events": [event]}) == 201
        status = None
        while time.monotonic() - posted < SETTLED_WITHIN_SECONDS:
            row = db.execute(
                "SELECT w.status FROM financing_settlementwork w "
                "JOIN ledger_entry e ON e.id = w.entry_id WHERE e.external_ref = 'ACM-PO-TEST-1'"
            ).fetchone()
            status = row[0] if row else None
            if status == "done":
                break
            time.sleep(0.2)
        took = time.monotonic() - posted

        assert status == "done", f"not settled {took:.1f}s after the POST"
        print(f"settled {took:.2f}s after the POST")
        assignment = db.execute(
            "SELECT a.status, v.status FROM financing_assignment a "
            "JOIN financing_advance v ON v.id = a.advance_id WHERE a.invoice_ref = ?",
            [invoice_ref],
        ).fetchone()
        assert assignment == ("settled", "repaid")
        assert "settlement_run" in worker_log.read_text()  # the worker did it, not the sweep's
        db.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGTERM)  # the supervisor stops its three servers
        with contextlib.suppress(subprocess.TimeoutExpired):
            make.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait()
    assert _processes_mentioning(str(demo_dir)) == []
    assert not _serving(port)
