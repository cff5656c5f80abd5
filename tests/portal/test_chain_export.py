"""The merchant's chain exported from the portal verifies offline with ``python -m
ledger.verify`` (exit 0), and the same file with one byte changed does not (exit 1)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from ledger import verify
from ledger.log.checkpoints import log_verifier
from ledger.log.sequencer import log_sequence_all
from merchants.models import Merchant
from tests.conftest import REPO_ROOT
from tests.financing.conftest import Trade
from tests.portal.conftest import portal_sign_in

pytestmark = pytest.mark.django_db


def _verify(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.verify", str(path), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def client(trade: Trade, make_portal_user: Callable[..., User]) -> Client:
    trade.fundable(2)
    return portal_sign_in(make_portal_user(trade.merchant))


def test_the_exported_chain_verifies_and_a_changed_byte_does_not(
    client: Client,
    trade: Trade,
    trade_for: Callable[[Merchant], Trade],
    make_merchant: Callable[..., Merchant],
    now: datetime,
    tmp_path: Path,
) -> None:
    trade_for(make_merchant()).fundable(1)  # another merchant's chain, in the same log
    log_sequence_all(now=now)
    response = client.get(reverse("portal:chain_export_download"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="{trade.merchant.public_id}-chain.json"'
    )
    path = tmp_path / "chain.json"
    path.write_bytes(response.content)
    bundle = response.json()
    assert len(bundle["entries"]) == len(trade.written) and bundle["pending"] == []
    assert {e["receipt"]["merchant_id"] for e in bundle["entries"]} == {trade.merchant.public_id}

    result = _verify(path, "--key", log_verifier().vkey)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("VERIFIED")

    data = bytearray(response.content)
    at = data.index(b"1000.00")
    data[at] = ord("9")  # one byte: 1000.00 becomes 9000.00 in one entry's body
    path.write_bytes(bytes(data))
    result = _verify(path, "--key", log_verifier().vkey)
    assert result.returncode == 1
    assert "body does not hash to its hash" in result.stdout


def test_before_any_checkpoint_the_export_says_to_wait(client: Client) -> None:
    response = client.get(reverse("portal:chain_export_download"))
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "Not ready yet" in response.content.decode()


def test_the_recipe_page_names_the_file_the_command_and_the_key(
    client: Client, trade: Trade
) -> None:
    page = client.get(reverse("portal:chain_export")).content.decode()
    assert f"python -m ledger.verify {trade.merchant.public_id}-chain.json" in page
    assert log_verifier().vkey in page
    checker = client.get(reverse("portal:verifier_download"))
    assert checker.content == Path(verify.__file__).read_bytes()
