"""A backup restores into a fresh database whose ledger and books verify (README: Backups).

Rollback detection (a restored older backup caught by a witness's later signed checkpoint)
waits for the signed checkpoints; this test covers dump, restore and verification.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from ledger.services import entry_append
from tests.conftest import REPO_ROOT, order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=REPO_ROOT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_a_restored_backup_verifies(tmp_path: Path, merchant, marketplace, now) -> None:
    for n in range(20):
        event = order_placed(ref=f"ORD-{n}")
        entry_append(source=marketplace.code, merchant_id=merchant.pk, event=event, now=now)
    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}"
    dump = tmp_path / "chainfin.dump"
    backup = _run("pg_dump", "--format=custom", f"--file={dump}", f"{server}/{db['NAME']}")
    assert backup.returncode == 0, backup.stderr

    copy = f"chainfin_restore_{uuid.uuid4().hex[:8]}"
    assert (
        _run("createdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], copy).returncode
        == 0
    )
    try:
        restore = _run(
            "pg_restore", "--no-owner", "--exit-on-error", f"--dbname={server}/{copy}", str(dump)
        )
        assert restore.returncode == 0, restore.stderr
        for command, expected in (("verify_ledger", "20 entries"), ("verify_books", "")):
            result = _run(
                sys.executable,
                "manage.py",
                command,
                DJANGO_SETTINGS_MODULE="config.settings.test",
                DATABASE_URL=f"{server}/{copy}",
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert expected in result.stdout, result.stdout
    finally:
        _run("dropdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], "--force", copy)
