"""A backup restores into a fresh database whose ledger and books verify (README: Backups),
and a restore of an OLDER backup, which verifies just as well, is caught as a rollback by a
witness that cosigned a later checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from ledger.log.checkpoints import log_verifier, witness_register
from ledger.log.notes import Signer
from ledger.log.sequencer import log_sequence_all
from ledger.log.witness import witness_round
from ledger.services import entry_append
from ledger.verify import ALG_COSIGNATURE
from merchants.services import api_key_issue
from tests.api.conftest import signed_client
from tests.conftest import REPO_ROOT, order_placed
from tests.deploy.conftest import free_port, wait_until_answering
from tests.ledger.log.test_tamper import ClientAdapter

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


def _server() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}"


def _backup(dump: Path) -> None:
    """pg_dump of the test database, as the README's Backups paragraph says."""
    name = connection.settings_dict["NAME"]
    backup = _run("pg_dump", "--format=custom", f"--file={dump}", f"{_server()}/{name}")
    assert backup.returncode == 0, backup.stderr


@pytest.fixture
def restored(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(where to put the dump, the URL of a fresh database) and, after the test, drop it."""
    db = connection.settings_dict
    copy = f"chainfin_restore_{uuid.uuid4().hex[:8]}"
    created = _run("createdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], copy)
    assert created.returncode == 0, created.stderr
    try:
        yield tmp_path / "chainfin.dump", f"{_server()}/{copy}"
    finally:
        _run("dropdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], "--force", copy)


def _restore(dump: Path, url: str) -> None:
    restore = _run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={url}", str(dump))
    assert restore.returncode == 0, restore.stderr


def _append(marketplace, merchant, refs: range, now) -> None:
    for n in refs:
        event = order_placed(ref=f"ORD-{n}")
        entry_append(source=marketplace.code, merchant_id=merchant.pk, event=event, now=now)


@pytest.mark.django_db(transaction=True)
def test_a_restored_backup_verifies(restored, merchant, marketplace, now) -> None:
    dump, copy = restored
    _append(marketplace, merchant, range(20), now)
    _backup(dump)
    _restore(dump, copy)
    for command, expected in (("verify_ledger", "20 entries"), ("verify_books", "")):
        result = _manage(command, database_url=copy)
        assert result.returncode == 0, result.stdout + result.stderr
        assert expected in result.stdout, result.stdout


def _manage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return _run(
        sys.executable,
        "manage.py",
        *args,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url,
    )


@pytest.fixture
def served(restored) -> Iterator[str]:
    """The API on the restored copy (gunicorn with the suite's keys); restore before using it."""
    _dump, copy = restored
    address = f"127.0.0.1:{free_port()}"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": copy,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_BIND": address,
        "GUNICORN_WORKERS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/deploy/gunicorn.conf.py"],
        cwd=REPO_ROOT,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_answering(f"http://{address}/healthz", process, seconds=90)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_restored_older_backup_is_caught_by_a_witness_as_a_rollback(
    restored, served, merchant, marketplace, now, tmp_path: Path
) -> None:
    dump, copy = restored
    issued = api_key_issue(marketplace=marketplace, now=now)
    credentials = tmp_path / "acme-key.json"
    credentials.write_text(
        json.dumps({"api_key": issued.key, "signing_secret": issued.signing_secret})
    )
    witness = Signer.generate("auditor.example/w1", ALG_COSIGNATURE)
    witness_register(name=witness.name, vkey=witness.verifier.vkey, party="an auditor", now=now)
    (tmp_path / "witness.key").write_text(witness.encoded)
    _append(marketplace, merchant, range(5), now)
    assert log_sequence_all(now=now).tree_size == 5
    _backup(dump)  # the older backup: 5 entries under a signed checkpoint of 5

    _append(marketplace, merchant, range(5, 12), now)
    assert log_sequence_all(now=now).tree_size == 12
    # The witness saw and cosigned the later checkpoint, and keeps it in its own state file.
    state = tmp_path / "witness-state.json"
    seen = witness_round(
        client=ClientAdapter(signed_client(marketplace)),
        signer=witness,
        log_key=log_verifier(),
        state=state,
        now=int(timezone.now().timestamp()),
    )
    assert seen is not None and seen.size == 12

    _restore(dump, copy)
    # Negative control: on its own the restored copy is a consistent ledger, log and
    # checkpoints (it was one, an hour ago), so the bank's verifiers pass it.
    alone = _manage("verify_ledger", database_url=copy)
    assert alone.returncode == 0 and "5 entries" in alone.stdout, alone.stdout + alone.stderr

    # The witness, against the API serving the copy, holds the later checkpoint: ALARM, exit 1.
    witnessed = _manage(
        "witness",
        f"--url=http://{served}",
        f"--key=@{tmp_path / 'witness.key'}",
        f"--credentials={credentials}",
        f"--log-key={log_verifier().vkey}",
        f"--state={state}",
        database_url=copy,
    )
    assert witnessed.returncode == 1, witnessed.stdout + witnessed.stderr
    assert "ALARM: the log shrank from 12 to 5 entries" in witnessed.stderr, witnessed.stderr
    assert json.loads(state.read_text())["size"] == 12  # nothing cosigned; it stays alarmed
