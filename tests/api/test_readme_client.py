"""The README's snippets work as written against a live server, and name only files a clone has."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from django.conf import settings
from django.db import connection

from ledger.models import Entry
from merchants.models import Merchant
from merchants.services import marketplace_create, merchant_onboard
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
DEMO_API = "http://127.0.0.1:8000"


def _block(language: str, after: str) -> str:
    start = README.index(after)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.DOTALL)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def _pointed_at(code: str, line: str, live_url: str) -> str:
    """``code`` with its one line setting the demo's address aimed at the live server instead."""
    assert code.count(line) == 1, f"the snippet no longer sets {line!r}"
    return code.replace(line, line.replace(DEMO_API, live_url))


def _test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def demo_merchant(db: None) -> Merchant:
    """The demo's first merchant, A3F9K2QZ7 on the marketplace ``acme``, as the snippets name."""
    acme = marketplace_create(code="acme", name="Acme")
    return merchant_onboard(
        legal_name="Demo Supplier GmbH",
        country="DE",
        tax_id="DE300000001",
        marketplace=acme,
        seller_id="A3F9K2QZ7",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_python_reference_client(live_server, demo_merchant, monkeypatch, capsys) -> None:
    code = _pointed_at(
        _block("python", "### Reference client"), f'API = "{DEMO_API}"', live_server.url
    )
    # Its `manage.py create_api_key acme` reaches the live server's (test) database.
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("DATABASE_URL", _test_database_url())
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    receipts = namespace["receipts"]
    assert receipts["receipts"][0]["merchant"] == "A3F9K2QZ7"  # the seller id it was sent as
    assert receipts["receipts"][0]["merchant_id"] == demo_merchant.public_id
    assert str(receipts) in capsys.readouterr().out
    assert Entry.objects.filter(external_ref="ORD-1001").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_curl_snippet(live_server, demo_merchant) -> None:
    script = _pointed_at(_block("sh", "The same with `curl`"), f"API={DEMO_API}", live_server.url)
    result = subprocess.run(
        ["sh", "-eu", "-c", script],
        cwd=REPO_ROOT,
        # Only what a shell in a fresh clone has, plus where the demo database is.
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": "memory://",
            # Signing secrets are sealed under these keys: the server's own.
            "CHAINFIN_SEALING_KEYS": ",".join(settings.CHAINFIN_SEALING_KEYS),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    body, status = result.stdout.rstrip("\n").rsplit("\n", 1)
    assert status == "201", result.stdout
    receipts = json.loads(body)["receipts"]
    assert [(r["merchant"], r["merchant_id"], r["ref"], r["seq"]) for r in receipts] == [
        ("A3F9K2QZ7", demo_merchant.public_id, "ORD-1002", 1)
    ]
    assert Entry.objects.filter(external_ref="ORD-1002").exists()


# Made by `make demo` (and listed in .gitignore), so a clone has them once it ran.
GENERATED = (".demo/", ".venv/")
# Backticked words with a slash that are not files: media types.
NOT_PATHS = re.compile(r"^(application|text)/")


def _named_paths() -> list[str]:
    spans = re.findall(r"`([^`\n]+)`", README)
    return sorted(
        {
            span
            for span in spans
            if re.fullmatch(r"[\w.-]+(/[\w.-]*)+", span) and not NOT_PATHS.match(span)
        }
    )


def _exists(path: str) -> bool:
    target = REPO_ROOT / path
    return target.exists()


def test_the_readme_names_only_files_a_clone_has() -> None:
    paths = _named_paths()
    assert "tests/api/test_readme_client.py" in paths  # the check sees what it should
    missing = [p for p in paths if not p.startswith(GENERATED) and not _exists(p)]
    assert missing == []
    assert "../" not in README, "the README points outside the repository"
    for path in (p for p in paths if p.startswith(GENERATED)):
        assert path.split("/")[0] + "/" in (REPO_ROOT / ".gitignore").read_text()
