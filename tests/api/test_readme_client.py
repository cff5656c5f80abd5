"""The README's reference client and curl line work, as written, against a live server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ledger.models import Entry
from tests.api.conftest import SignedClient

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _block(language: str, after: str) -> str:
    start = README.index(after)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.DOTALL)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


@pytest.fixture
def demo_merchant(make_merchant):
    return make_merchant(seller_id="A3F9K2QZ7")


def test_python_reference_client(live_server, api: SignedClient, demo_merchant) -> None:
    code = _block("python", "### Reference client")
    code = code.replace('API = "http://127.0.0.1:8000"', f'API = "{live_server.url}"')
    code = code.replace(
        'API_KEY, SECRET = "cfk_…", "cfs_…"', f'API_KEY, SECRET = "{api.key}", "{api.secret}"'
    )
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    receipts = namespace["receipts"]
    assert receipts["receipts"][0]["merchant"] == "A3F9K2QZ7"  # the seller id it was sent as
    assert receipts["receipts"][0]["merchant_id"] == demo_merchant.public_id
    assert Entry.objects.filter(external_ref="ORD-1001").exists()


def test_curl_line(live_server, api: SignedClient, demo_merchant) -> None:
    script = _block("sh", "The same with `curl`")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={
            "API": live_server.url,
            "API_KEY": api.key,
            "SECRET": api.secret,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"ref":"ORD-1002"' in result.stdout
    assert Entry.objects.filter(external_ref="ORD-1002").exists()
